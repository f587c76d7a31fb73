//go:build !unix

package daemon

import (
	"errors"
	"os"
)

// daemonSignals: there is no SIGHUP or SIGUSR1 here; restart the daemon to reload its configuration.
func daemonSignals() (reload, pollNow os.Signal) { return nil, nil }

func openSyslog() (SyslogWriter, error) {
	return nil, errors.New("syslog is not available on this system")
}
