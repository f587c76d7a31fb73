//go:build unix

package store

import (
	"io/fs"
	"os"
	"syscall"
)

// createTmpFile creates path exclusively (mode 0600, no symbolic link followed) for Deliver. It
// writes through the bare descriptor: os.OpenFile would spend four fcntl calls and a failing
// epoll_ctl per message putting a regular file into non-blocking mode for the network poller and
// back (~6 of the ~10 system calls per delivered message).
func createTmpFile(path string) (tmpFile, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		return &fdFile{fd: fd, path: path}, nil
	}
}

// fdFile is a file being written by Deliver: blocking writes on a descriptor of a regular file.
type fdFile struct {
	fd   int
	path string
}

func (f *fdFile) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := syscall.Write(f.fd, p[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return n, &fs.PathError{Op: "write", Path: f.path, Err: err}
		}
		if m == 0 {
			return n, &fs.PathError{Op: "write", Path: f.path, Err: syscall.EIO}
		}
		n += m
	}
	return n, nil
}

// Close closes the descriptor once; EINTR from close(2) is not retried (the descriptor is gone).
func (f *fdFile) Close() error {
	if f.fd < 0 {
		return &fs.PathError{Op: "close", Path: f.path, Err: fs.ErrClosed}
	}
	err := syscall.Close(f.fd)
	f.fd = -1
	if err != nil && err != syscall.EINTR {
		return &fs.PathError{Op: "close", Path: f.path, Err: err}
	}
	return nil
}

// renameFile renames a message file into new/. os.Rename first lstat's the target to refuse
// replacing a directory, a failing stat per message; rename(2) of a file onto a directory fails
// with EISDIR anyway.
func renameFile(oldpath, newpath string) error {
	for {
		err := syscall.Rename(oldpath, newpath)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
		}
		return nil
	}
}
