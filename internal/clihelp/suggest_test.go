package clihelp

import "testing"

func TestNearest(t *testing.T) {
	cands := []string{"sync", "status", "serverinfo", "daemon", "verbose", "v"}
	for in, want := range map[string]string{
		"snyc":     "sync",   // a transposition is one edit
		"stauts":   "status", // so is this one
		"deamon":   "daemon",
		"verbsoe":  "verbose",
		"sy":       "",           // too short to guess
		"xyzzy":    "",           // nothing close
		"statuss":  "status",     // one insertion
		"servinfo": "serverinfo", // two of ten letters
	} {
		if got := Nearest(in, cands); got != want {
			t.Errorf("Nearest(%q) = %q, want %q", in, got, want)
		}
	}
}
