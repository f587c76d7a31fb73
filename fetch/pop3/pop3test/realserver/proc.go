package realserver

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Require skips t, or fails it when the environment variable requireEnv is "1", if err (why the
// server cannot run here) is not nil. name prefixes the message.
func Require(t testing.TB, name string, err error, requireEnv string) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv(requireEnv) == "1" {
		t.Fatalf("%s: %v, and %s=1", name, err, requireEnv)
	}
	t.Skipf("%s: %v", name, err)
}

// Start starts cmd and returns a channel closed once it has exited and been reaped.
func Start(cmd *exec.Cmd) (exited chan struct{}, err error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited = make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	return exited, nil
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1. They are free when FreePorts returns;
// another process may take one before the server binds it.
func FreePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Logs returns the last 64 KiB of each non-empty file of paths, each after a line "--- NAME".
func Logs(paths ...string) string {
	var b strings.Builder
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil || len(data) == 0 {
			continue
		}
		if len(data) > 64<<10 {
			data = data[len(data)-64<<10:]
		}
		fmt.Fprintf(&b, "--- %s\n%s", filepath.Base(p), data)
	}
	return b.String()
}
