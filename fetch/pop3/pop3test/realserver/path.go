package realserver

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// OpenPath lets a server's unprivileged processes reach dir, a directory under os.TempDir:
// t.TempDir creates directories only their owner (root, here) can enter, so each directory from
// dir up to the temporary directory that others cannot search is made 0755. server names the
// processes in the error for a directory outside the temporary directory.
func OpenPath(dir, server string) error {
	tmp := filepath.Clean(os.TempDir())
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if p == tmp || !strings.HasPrefix(p, tmp+string(filepath.Separator)) {
				return fmt.Errorf("%s is not searchable by others, so %s cannot reach %s; set TMPDIR", p, server, dir)
			}
			if err := os.Chmod(p, fi.Mode().Perm()|0o755); err != nil {
				return err
			}
		}
		if p == "/" || p == tmp {
			return nil
		}
	}
}
