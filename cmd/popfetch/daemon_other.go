//go:build !unix

package main

import (
	"errors"
	"os"
)

// daemonSignals: there is no SIGHUP or SIGUSR1 here; restart the daemon to reload its configuration.
func daemonSignals() (reload, pollNow os.Signal) { return nil, nil }

func openSyslog() (syslogWriter, error) {
	return nil, errors.New("syslog is not available on this system")
}
