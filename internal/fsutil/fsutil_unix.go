//go:build unix

package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// NoFollow is O_NOFOLLOW: add it to the flags of every os.OpenFile of a file popfetch writes.
const NoFollow = syscall.O_NOFOLLOW

// MkdirPrivate creates dir and its missing parents with mode 0700 and then checks it with CheckDir.
func MkdirPrivate(dir, what string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return CheckDir(dir, what)
}

// CheckDir returns an *UnsafeError unless dir is a directory owned by the running user that neither
// group (unless it is the user's private group) nor others may write, below directories that are each
// owned by the user or root and not writable by group or others unless sticky (like /tmp). Symbolic
// links on the way are followed, and must be owned by the user or root themselves; the directories
// they lead to are checked too. what names dir in the message ("state directory"). Other errors (dir
// missing) are returned as they are.
func CheckDir(dir, what string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &UnsafeError{Path: abs, What: what, Why: "popfetch needs a directory there", Problem: "is not a directory", Fix: "move it aside"}
	}
	uid := os.Geteuid()
	if li, err := os.Lstat(abs); err == nil && li.Mode()&fs.ModeSymlink != 0 {
		if o := owner(li); o != uid && o != 0 {
			return &UnsafeError{Path: abs, What: what, Why: whyChange, Problem: fmt.Sprintf("is a symbolic link owned by uid %d (neither you, uid %d, nor root)", o, uid),
				Fix: "remove the link, or use a directory of your own"}
		}
	}
	if owner(fi) != uid {
		return &UnsafeError{Path: abs, What: what, Why: whyChange, Problem: fmt.Sprintf("is owned by uid %d, not by you (uid %d)", owner(fi), uid),
			Fix: fmt.Sprintf("remove it (popfetch creates it, mode 0700) or use a directory of your own; if it is yours: chown %d %s && chmod 700 %s", uid, abs, abs)}
	}
	if othersMayWrite(fi) {
		return &UnsafeError{Path: abs, What: what, Why: whyChange, Problem: fmt.Sprintf("is writable by group or others (mode %04o)", fi.Mode().Perm()),
			Fix: fmt.Sprintf("chmod go-w %s (popfetch creates it 0700)", abs)}
	}
	if err := checkParents(abs, what, uid); err != nil {
		return err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
		return checkParents(real, what, uid)
	}
	return nil
}

// checkParents checks every directory above path, and every symbolic link on the way.
func checkParents(path, what string, uid int) error {
	for p := filepath.Dir(path); ; p = filepath.Dir(p) {
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if o := owner(fi); o != uid && o != 0 {
			return &UnsafeError{Path: path, What: what, Why: whyChange,
				Problem: fmt.Sprintf("is inside %s, which is owned by uid %d (neither you, uid %d, nor root)", p, o, uid),
				Fix:     "use a directory in a tree only you (or root) control"}
		}
		if fi.IsDir() && othersMayWrite(fi) && fi.Mode()&fs.ModeSticky == 0 {
			return &UnsafeError{Path: path, What: what, Why: whyChange,
				Problem: fmt.Sprintf("is inside %s, which group or others may write (mode %04o)", p, fi.Mode().Perm()),
				Fix:     fmt.Sprintf("chmod go-w %s (or +t), or use a directory elsewhere", p)}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// CheckFile returns an *UnsafeError unless the open file f (named path) belongs to the running user
// (or root, when rootOK) and has none of the permission bits in forbid (0o022: writable by group or
// others; 0o077: any access by them); group bits are allowed when the group is the owner's private
// group (see privateGroup). what names the file in the message.
func CheckFile(f *os.File, path, what string, rootOK bool, forbid fs.FileMode) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	uid := os.Geteuid()
	if o := owner(fi); o != uid && !(rootOK && o == 0) {
		return &UnsafeError{Path: path, What: what, Why: whyChange, Problem: fmt.Sprintf("is owned by uid %d, not by you (uid %d)", o, uid),
			Fix: fmt.Sprintf("use a file of your own (cp it, or chown %d %s)", uid, path)}
	}
	m := fi.Mode().Perm()
	bad := m & forbid
	if bad&0o070 != 0 && privateGroup(fi) {
		bad &^= 0o070
	}
	if bad != 0 {
		who, why := "writable by group or others", whyChange
		if forbid&0o044 != 0 {
			who, why = "accessible to group or others", "others could read the secret in it, so popfetch refuses it (like ssh)"
		}
		return &UnsafeError{Path: path, What: what, Why: why, Problem: fmt.Sprintf("is %s (mode %04o)", who, m),
			Fix: fmt.Sprintf("chmod %s %s", chmodFix(forbid), path)}
	}
	return nil
}

func chmodFix(forbid fs.FileMode) string {
	if forbid&0o055 != 0 {
		return "go-rwx"
	}
	return "go-w"
}

// CheckOpened returns an error unless the file popfetch just opened for writing at path is a regular
// file owned by the running user with a single link: a hard link to someone else's file, or a
// device, is refused.
func CheckOpened(f *os.File, path string) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.Mode().IsRegular():
		return &fs.PathError{Op: "open", Path: path, Err: errors.New("not a regular file")}
	case ok && int(st.Uid) != os.Geteuid():
		return &UnsafeError{Path: path, What: "file", Why: whyChange, Problem: fmt.Sprintf("is owned by uid %d, not by you (uid %d)", st.Uid, os.Geteuid()),
			Fix: "remove it: popfetch creates it"}
	case ok && st.Nlink > 1:
		return &UnsafeError{Path: path, What: "file", Why: whyChange, Problem: fmt.Sprintf("has %d hard links", st.Nlink),
			Fix: "remove it: popfetch creates it"}
	}
	return nil
}

// othersMayWrite reports whether anyone but the owner may write fi: it is world-writable, or
// group-writable for a group that is not the owner's private group.
func othersMayWrite(fi fs.FileInfo) bool {
	m := fi.Mode().Perm()
	return m&0o002 != 0 || (m&0o020 != 0 && !privateGroup(fi))
}

// privateGroup reports whether fi's group is its owner's private group, as Debian's OpenSSH allows
// (user-group-modes): many systems give each user a group of their own and a umask of 002, so
// their files are group-writable harmlessly. The group must be the owner's primary group, bear the
// owner's name, and list no other member in /etc/group.
func privateGroup(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	u, err := user.LookupId(strconv.Itoa(int(st.Uid)))
	if err != nil || u.Gid != strconv.Itoa(int(st.Gid)) {
		return false
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil || g.Name != u.Username {
		return false
	}
	data, err := os.ReadFile("/etc/group")
	if err != nil {
		return true // no local group file to contradict the name
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) == 4 && f[2] == u.Gid && f[3] != "" {
			for _, m := range strings.Split(f[3], ",") {
				if m != u.Username {
					return false
				}
			}
		}
	}
	return true
}

func owner(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// Symlink turns the error of an open with NoFollow that met a symbolic link (ELOOP) into an
// *UnsafeError that says so; other errors are returned as they are.
func Symlink(path string, err error) error {
	if !errors.Is(err, syscall.ELOOP) {
		return err
	}
	return &UnsafeError{Path: path, What: "file", Problem: "is a symbolic link",
		Why: "popfetch does not follow links where it keeps its files", Fix: "remove the link: popfetch creates the file"}
}
