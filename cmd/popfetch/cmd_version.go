package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/popfetch/popfetch/internal/clihelp"
	"github.com/urfave/cli/v2"
)

// version is the release version, set by the release build (-ldflags "-X main.version=1.2.3"); when
// empty the module version from the build information is used ("(devel)" for a build from a clone).
var version string

// buildInfo is what `popfetch version` and `popfetch --version` print.
type buildInfo struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"` // VCS revision the binary was built from
	Time     string `json:"time,omitempty"`     // its commit time, RFC 3339
	Modified bool   `json:"modified"`           // the work tree had uncommitted changes
	Go       string `json:"go"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		if b.Version == "" {
			b.Version = "unknown"
		}
		return b
	}
	if b.Version == "" {
		b.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// writeVersion prints the build information: three lines for people, or one JSON object.
func writeVersion(w io.Writer, asJSON bool) error {
	b := readBuildInfo()
	if asJSON {
		return json.NewEncoder(w).Encode(b)
	}
	fmt.Fprintf(w, "popfetch %s\n", b.Version)
	if b.Revision != "" {
		rev := "revision " + b.Revision
		if b.Time != "" {
			rev += " (" + b.Time + ")"
		}
		if b.Modified {
			rev += ", modified"
		}
		fmt.Fprintln(w, rev)
	}
	_, err := fmt.Fprintf(w, "built with %s for %s/%s\n", b.Go, b.OS, b.Arch)
	return err
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, the VCS revision it was built from, and the Go version and platform (--json: as JSON)",
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return withCode(exitUsage, fmt.Errorf("usage: popfetch version (no arguments)"))
			}
			return writeVersion(c.App.Writer, clihelp.GlobalBool(c, "json"))
		},
	}
}
