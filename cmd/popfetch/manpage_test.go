package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestManPage: popfetch man prints a roff page with every visible command and the exit status
// table, rendered by popfetch itself (release builds leave urfave/cli's renderer out), and man(1)
// renders it without warnings where it is installed.
func TestManPage(t *testing.T) {
	t.Parallel()
	r := popfetch(t, "", nil, "man")
	expectCode(t, r, 0)
	for _, want := range []string{".TH popfetch 1\n", ".SH NAME\npopfetch \\- fetch mail", ".SH GLOBAL OPTIONS\n",
		".SS sync\n", ".SS daemon\n", ".SS config check\n", "\\fB\\-\\-config\\fR, \\fB\\-c\\fR \\fIvalue\\fR\n",
		".SH EXIT STATUS\n", "75"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("man page lacks %q", want)
		}
	}
	for i, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, ".") && !strings.HasPrefix(l, ".SH ") && !strings.HasPrefix(l, ".SS ") &&
			!strings.HasPrefix(l, ".TH ") && !strings.HasPrefix(l, ".B ") &&
			l != ".TP" && l != ".PP" && l != ".nh" && l != ".nf" && l != ".fi" {
			t.Errorf("line %d is an unexpected roff request: %q", i+1, l)
		}
	}
	man, err := exec.LookPath("man")
	if err != nil {
		t.Log("man(1) not installed: rendering not checked")
		return
	}
	cmd := exec.Command(man, "--warnings", "-l", "-")
	cmd.Stdin = strings.NewReader(r.stdout)
	cmd.Env = []string{"MANWIDTH=80", "LC_ALL=C.UTF-8", "PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Skipf("man -l: %v (%s)", err, out)
	}
	if !strings.Contains(string(out), "fetch new mail from all accounts") {
		t.Errorf("man -l rendered no sync section:\n%s", out)
	}
	if strings.Contains(string(out), "warning") {
		t.Errorf("man -l warns:\n%s", out)
	}
}
