package courier

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

const supported = true

// sysProcAttr makes the init script PID 1 of new PID and mount namespaces (killing it kills every
// Courier process), and kills it when the test binary dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS,
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
	}
}

// sessionProcesses lists the live processes serving a POP3 connection (couriertls,
// courierpop3login, courierpop3d) in the PID namespace whose init is init, from /proc.
func sessionProcesses(init int) ([]int, error) {
	ns, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(init), "ns", "pid"))
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink(filepath.Join("/proc", e.Name(), "ns", "pid")); err != nil || l != ns {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ...; comm is cut to 15 bytes.
		open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || end < open || len(b) < end+3 || b[end+2] == 'Z' || b[end+2] == 'X' {
			continue
		}
		switch string(b[open+1 : end]) {
		case "couriertls", "courierpop3logi", "courierpop3d":
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// listeners reports who listens on TCP port (IPv4 or IPv6, any address): whether a process in the
// PID namespace whose init is init does (ours), and whether any other socket does (others). Both
// come from /proc: a port that Start chose can be taken by another server between the choice and
// couriertcpd's bind, and then a connection to it succeeds but reaches the wrong server.
func listeners(init, port int) (ours, others bool, err error) {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return false, false, err
		}
		for _, line := range bytes.Split(data, []byte("\n"))[1:] {
			fields := strings.Fields(string(line))
			if len(fields) < 10 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, hexPort, ok := strings.Cut(fields[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); !ok || err != nil || int(p) != port {
				continue
			}
			inodes[fields[9]] = true
		}
	}
	if len(inodes) == 0 {
		return false, false, nil
	}
	ns, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(init), "ns", "pid"))
	if err != nil {
		return false, false, err
	}
	found := map[string]bool{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return false, false, err
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if l, err := os.Readlink(filepath.Join("/proc", e.Name(), "ns", "pid")); err != nil || l != ns {
			continue
		}
		fds, err := os.ReadDir(filepath.Join("/proc", e.Name(), "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			l, err := os.Readlink(filepath.Join("/proc", e.Name(), "fd", fd.Name()))
			if inode, ok := strings.CutPrefix(l, "socket:["); err == nil && ok {
				inode = strings.TrimSuffix(inode, "]")
				if inodes[inode] {
					found[inode] = true
				}
			}
		}
	}
	return len(found) > 0, len(found) < len(inodes), nil
}
