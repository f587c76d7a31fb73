//go:build unix

package pop3_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
)

// A ca_file that verifies the server is all popfetch reads: the system's trust store (here a FIFO
// named by SSL_CERT_FILE, whose opening the test would see) is not touched (issue 16: ~10 ms of CPU
// and a few hundred system calls per run). Before, every run with ca_file loaded the system bundle.
func TestCAFileVerifiesWithoutSystemRoots(t *testing.T) {
	s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS})
	caFile := writeFile(t, "ca.pem", s.CACertPEM())
	fifo := filepath.Join(t.TempDir(), "system-bundle.pem")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	// A reader of the FIFO (the child loading the system roots) cannot finish before this writer
	// closes, so if the child exits with opened still false, it never opened the FIFO.
	var opened atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0) // blocks until a reader opens it
		if err != nil {
			return
		}
		opened.Store(true)
		f.Close()
	}()
	out := runTLSRootsChild(t, s.Addr(), caFile, fifo)
	wasOpened := opened.Load()
	// Release the writer if no one opened the FIFO.
	if r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
		<-done
		r.Close()
	}
	if strings.TrimSpace(lastLine(out)) != "ok" {
		t.Fatalf("dial with ca_file failed:\n%s", out)
	}
	if wasOpened {
		t.Fatal("the system's trust store was read although ca_file verifies the server")
	}
}
