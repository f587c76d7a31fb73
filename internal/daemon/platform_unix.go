//go:build unix

package daemon

import (
	"log/syslog"
	"os"
	"syscall"
)

// daemonSignals are the signals `popfetch daemon` acts on besides SIGINT/SIGTERM: reload the
// configuration, poll every account now.
func daemonSignals() (reload, pollNow os.Signal) { return syscall.SIGHUP, syscall.SIGUSR1 }

// openSyslog connects to the local syslog daemon (facility mail, tag popfetch).
func openSyslog() (SyslogWriter, error) {
	return syslog.New(syslog.LOG_MAIL|syslog.LOG_INFO, "popfetch")
}
