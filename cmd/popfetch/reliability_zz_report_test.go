package main

// The report of the reliability suite: every case records what popfetch did, and TestMain (in
// cli_test.go) writes docs/RELIABILITY.md from the records after the run when
// POPFETCH_WRITE_RELIABILITY=1. A normal run records and compares nothing.

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
)

// relSections are the sections of the report, in order, with their introductions.
var relSections = []struct{ key, title, intro string }{
	{"crash", "1. Crash trials: kill -9 and SIGTERM at random moments",
		"The real `popfetch sync` is killed while it works — when the server has received a random one of its " +
			"commands (connect, login, UIDL/LIST, each RETR, each DELE, QUIT), when the maildir's tmp/ holds a random " +
			"number of files (delivery, before the barrier), when the state journal holds a random number of records " +
			"(after the barrier: pending, then delivered), when new/ holds a random number of files (the renames), or " +
			"at a random instant; then 0–3 ms later — then run again to completion. Every seeded message must be in the " +
			"maildir exactly once (bodies compared byte for byte, the Received: header removed), and the server " +
			"must hold what the mode says (delete: nothing; keep: everything). With SIGTERM the interrupted run " +
			"itself must exit 130 (or 0 if it had already finished), having deleted exactly what it delivered. " +
			"Kill points are seeded: `POPFETCH_CRASH_SEED=N` replays a run; `POPFETCH_LONG=1` runs 250 trials per mode. \"Finished before the kill point\" counts runs that ended before the signal."},
	{"hostile", "2. Hostile and broken servers",
		"pop3test with fault injection (and a small custom listener for a server that lies about PIPELINING); " +
			"profile `timeout: 2s`. Each case asserts the exit code, one line on stderr `popfetch: ACCOUNT: …`, that " +
			"every message is still on the server or delivered exactly once, that the state is intact (readable, " +
			"nothing pending, delivered ⇔ in the maildir), and that the run ended well within the test's deadline."},
	{"local", "3. Local faults",
		"Faults of the destination and the state: each asserts the exit code, the message, and that nothing " +
			"was lost (what was not delivered durably is still on the server) or duplicated."},
	{"overlap", "4. Overlapping runs", "Runs of one account exclude each other (a lock file); different accounts run at once."},
	{"secrets", "5. Secrets",
		"A known password and OAuth token, every command with `--trace -v --json`, on success and on errors: " +
			"the secrets must appear in no output, in no file popfetch wrote, and in no `/proc/PID/cmdline` of " +
			"popfetch or its children; files popfetch creates are 0600, directories 0700."},
	{"imap", "6. Hosted mailboxes: IMAP and the Gmail API, kill -9 and SIGTERM around APPEND and the import",
		"IMAP: the real `popfetch sync` fetches from pop3test and appends to a private Dovecot's IMAP (`deliver: imap:`, " +
			"one new mailbox per trial, `create: true`). It is signalled when the POP3 server has received a random one " +
			"of its commands, when the state journal holds a random number of records (pending before the APPENDs, " +
			"then delivered), when the target mailbox's maildir holds a random number of the batch's messages in tmp/ " +
			"(the MULTIAPPEND streamed while the batch is retrieved, not yet visible) or in new/ and cur/ (the " +
			"batch appended, not yet recorded), or at a random instant; then 0–3 ms later; then run again to completion. Every seeded " +
			"message must be in the mailbox exactly once (read back over IMAP, the X-Popfetch-ID line removed and CRLF " +
			"made LF, compared byte for byte), and the POP3 server must hold what the mode says. Gmail: the same " +
			"against a fake Gmail API on loopback (`deliver: gmail:`, `store/gmailtest`), killed when an import " +
			"request arrives, after the fake stored a message but before it answered, at a POP3 command, at a state " +
			"journal record or at a random instant; every message must be in the fake mailbox exactly once."},
	{"hardening", "7. Hardening: hostile servers, certificates, local users and profiles",
		"Each case reproduces an attack or a careless setting found in a security review of popfetch (a " +
			"certificate or server reply carrying terminal escapes, a state directory or config file another user " +
			"controls, secrets in children's environments, a server lying about sizes, endpoints redirecting off " +
			"https, signals while blocked) and asserts what popfetch does instead: the exit code, the one-line " +
			"message, and that nothing was lost, overwritten or leaked."},
}

type relRow struct {
	section, name, did, exit string
	lost, dup                int
}

var relReport struct {
	sync.Mutex
	rows   []relRow
	failed []string // tests of the suite that failed: no report then
}

// relTrack notes, when t ends, whether it failed, so that no report is written from a failed run.
func relTrack(t *testing.T) {
	t.Cleanup(func() {
		if t.Failed() {
			relReport.Lock()
			relReport.failed = append(relReport.failed, t.Name())
			relReport.Unlock()
		}
	})
}

// relRecord records one case of the report. exit is the exit code (or a summary like "137, then 0").
func relRecord(section, name, did string, exit any, lost, dup int) {
	relReport.Lock()
	defer relReport.Unlock()
	relReport.rows = append(relReport.rows, relRow{section, name, did, fmt.Sprint(exit), lost, dup})
}

// relWriteReport writes docs/RELIABILITY.md from the records of this run. TestMain calls it after
// m.Run when POPFETCH_WRITE_RELIABILITY=1; it refuses when a test of the suite failed or a section
// has no rows (the suite was not run whole).
func relWriteReport() error {
	relReport.Lock()
	rows := append([]relRow(nil), relReport.rows...)
	failed := relReport.failed
	relReport.Unlock()
	if len(failed) > 0 {
		return fmt.Errorf("not writing docs/RELIABILITY.md: %v failed", failed)
	}
	bySection := map[string][]relRow{}
	for _, r := range rows {
		bySection[r.section] = append(bySection[r.section], r)
	}
	for _, s := range relSections {
		if len(bySection[s.key]) == 0 {
			return fmt.Errorf("not writing docs/RELIABILITY.md: no results for section %q: run the whole suite (go test ./cmd/popfetch -run 'TestRel' without -short or -shuffle)", s.key)
		}
	}
	var b strings.Builder
	b.WriteString(`# popfetch reliability and security report

<!-- GENERATED by the tests of cmd/popfetch (reliability_*_test.go); do not edit. Regenerate with:

    POPFETCH_WRITE_RELIABILITY=1 go test -count=1 ./cmd/popfetch -run 'TestRel'

(add POPFETCH_LONG=1 for the long crash trials; POPFETCH_CRASH_SEED=N replays a seed). -->

This file is written by the test suite from the outcome of each case; a normal ` + "`go test`" + ` run checks the
same cases without writing it. "Lost" counts seeded messages found neither in the destination nor on
the server; "duplicated" counts extra copies in the destination.

Exit codes are those of the README (0 ok, 65 bad data, 69 TLS, 74 local I/O, 75 temporary, 76
protocol, 77 authentication, 78 configuration, 130 interrupted; 137 = killed by SIGKILL).

`)
	for _, s := range relSections {
		fmt.Fprintf(&b, "## %s\n\n%s\n\n", s.title, s.intro)
		b.WriteString("| case | what popfetch did | exit code | lost | duplicated |\n|---|---|---|---|---|\n")
		for _, r := range bySection[s.key] {
			fmt.Fprintf(&b, "| %s | %s | %s | %d | %d |\n", relCell(r.name), relCell(r.did), relCell(r.exit), r.lost, r.dup)
		}
		b.WriteString("\n")
	}
	fuzz, err := relFuzzSection()
	if err != nil {
		return err
	}
	b.WriteString(fuzz)
	path := filepath.Join("..", "..", "docs", "RELIABILITY.md")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s (%d cases)\n", path, len(rows))
	return nil
}

// relVolatile matches what changes from run to run (temporary paths, ports, fingerprints, times),
// so that a regenerated report differs only where the outcome does.
var relVolatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`/tmp/[^\s:"]+`), "/tmp/…"},
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "127.0.0.1:PORT"},
	{regexp.MustCompile(`sha256:[0-9A-Fa-f:]{64,}`), "sha256:…"},
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`), "TIME"},
	{regexp.MustCompile(`\(pid \d+\)`), "(pid N)"},
}

func relCell(s string) string {
	for _, v := range relVolatile {
		s = v.re.ReplaceAllString(s, v.with)
	}
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.Join(strings.Fields(s), " ")
}

// relFuzzSection lists the fuzz targets of the repository (found in its *_test.go files).
func relFuzzSection() (string, error) {
	root := filepath.Join("..", "..")
	re := regexp.MustCompile(`^func (Fuzz\w+)\(`)
	targets := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				rel, _ := filepath.Rel(root, filepath.Dir(path))
				targets["./"+filepath.ToSlash(rel)] = append(targets["./"+filepath.ToSlash(rel)], m[1])
			}
		}
		return sc.Err()
	})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("## 8. Fuzzing\n\n`.ci/run` runs every fuzz target for 20,000 executions (`bash .ci/fuzz 20000x`; a count, because a duration can end a run with a spurious \"context deadline exceeded\" in Go 1.26, golang/go#75804). Run them longer with\n\n" +
		"    bash .ci/fuzz 2000000x    # or a duration such as 5m, which may hit that Go issue\n\nor one target with `go test -run '^$' -fuzz '^FuzzParseStatus$' -fuzztime 10m ./fetch/pop3`. " +
		"A crasher that the fuzzer finds is saved under the package's `testdata/fuzz/TARGET/` and from then on runs " +
		"as a regression case in every `go test`.\n\n| package | targets |\n|---|---|\n")
	pkgs := make([]string, 0, len(targets))
	for p := range targets {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	for _, p := range pkgs {
		fmt.Fprintf(&b, "| `%s` | %s |\n", p, strings.Join(targets[p], ", "))
	}
	return b.String(), nil
}
