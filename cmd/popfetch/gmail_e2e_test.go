package main

// End-to-end tests of deliver: gmail (issue 14, item 2) with the real binary: pop3test as the ISP's
// POP3 server, store/gmailtest as the Gmail API, config/oauth2test as Google's token endpoint.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/config/oauth2test"
	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
	"github.com/popfetch/popfetch/store/gmailtest"
)

// gmSetup is one account "work" fetching from a pop3test server into a gmailtest mailbox.
type gmSetup struct {
	*profile
	pop   *pop3test.Server
	gmail *gmailtest.Server
	auth  *oauth2test.Server
}

// gmNew starts the three servers and writes the profile; unless login is set, the destination's
// token file holds a valid access token (no login needed). extra is more YAML for the gmail block.
func gmNew(t *testing.T, keep bool, gopts *gmailtest.Options, aopts *oauth2test.Options, extra string, login bool) *gmSetup {
	t.Helper()
	pop, ca := relServer(t, pop3test.Options{})
	if gopts == nil {
		gopts = &gmailtest.Options{}
	}
	if gopts.Token == nil {
		gopts.Token = func(tok string) bool { return strings.HasPrefix(tok, "test-access-token") }
	}
	g := gmailtest.NewServer(t, gopts)
	auth := oauth2test.NewServer(t, aopts)
	deliver := fmt.Sprintf("{gmail: {api_url: %q, oauth2: {provider: custom, client_id: popfetch-test, auth_url: %q, token_url: %q}%s}}",
		g.URL, auth.AuthURL(), auth.TokenURL(), extra)
	s := &gmSetup{profile: relNewProfile(t, t.TempDir()), pop: pop, gmail: g, auth: auth}
	s.addAt("work", pop.Port(), "ca_file: "+ca, relKeep(keep), "deliver: "+deliver)
	if login {
		r := (&oauthSetup{t: t, dir: s.dir, path: s.path,
			env: []string{"PATH=" + t.TempDir(), "DBUS_SESSION_BUS_ADDRESS="}}).login("--deliver")
		if r.code != 0 {
			t.Fatalf("oauth2 login --deliver: exit %d: %s", r.code, r.stderr)
		}
	} else {
		gmWriteToken(t, s.stateDir, auth.TokenURL())
	}
	return s
}

// gmWriteToken caches a valid access token for work@deliver, as a login would have.
func gmWriteToken(t *testing.T, stateDir, tokenURL string) {
	t.Helper()
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(map[string]any{"version": 1, "client_id": "popfetch-test", "token_url": tokenURL,
		"access_token": "test-access-token", "token_type": "Bearer", "expiry": time.Now().Add(24 * time.Hour)})
	if err := os.WriteFile(filepath.Join(stateDir, "work@deliver.oauth2"), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (s *gmSetup) sync(args ...string) result {
	s.t.Helper()
	return s.run(append([]string{"sync"}, args...)...)
}

var gmAdded = regexp.MustCompile(`^(X-Popfetch-ID: [^\n]*\n|Message-ID: <popfetch\.[0-9a-f]+@popfetch\.invalid>\n|Received: [^\n]*by popfetch[^\n]*\n(\t[^\n]*\n)*)`)

// gmOriginal undoes what popfetch does to a message on its way into Gmail (the headers it adds,
// CRLF line ends), to compare it with what the POP server held.
func gmOriginal(raw []byte) []byte {
	b := bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
	for {
		loc := gmAdded.FindIndex(b)
		if loc == nil {
			return b
		}
		b = b[loc[1]:]
	}
}

// gmTally counts each seeded message in the mailbox: lost and duplicated ones.
func gmTally(seeded []relMessage, mailbox []gmailtest.Message) (lost, dup int, foreign []string) {
	count := map[string]int{}
	for _, m := range mailbox {
		count[string(gmOriginal(m.Raw))]++
	}
	for _, m := range seeded {
		want := string(m.Data)
		if !strings.HasSuffix(want, "\n") {
			want += "\n" // POP3 ends every message with a line end before the final "." (RFC 1939 §3)
		}
		n := count[want]
		delete(count, want)
		switch {
		case n == 0:
			lost++
		case n > 1:
			dup += n - 1
		}
	}
	for k := range count {
		foreign = append(foreign, k)
	}
	return lost, dup, foreign
}

// gmHard is hard content: dot lines, a 100,000-character line, 8-bit, NUL, a lone CR, no final newline,
// and Message-IDs unique, shared by two messages, and missing.
func gmHard() []relMessage {
	return []relMessage{
		{UID: "h1", Data: []byte("Message-ID: <h1@example.org>\nSubject: dots\n\n.\n..two\n.x\n")},
		{UID: "h2", Data: []byte("Message-ID: <shared@example.org>\nSubject: long\n\n" + strings.Repeat("y", 100000) + "\n")},
		{UID: "h3", Data: []byte("Message-ID: <shared@example.org>\nSubject: 8bit \xe9\xff\n\nNUL \x00 here, lone CR \r here\nno final newline")},
		{UID: "h4", Data: []byte("Subject: no Message-ID\n\nbody\n")},
	}
}

func TestGmailE2E(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(relModeName(keep), func(t *testing.T) {
			s := gmNew(t, keep, nil, nil, ", labels: [ISP]", false)
			seeded := append(gmHard(), relMessages("e2e", 5)...)
			s.pop.SetMessages(relToServer(seeded))
			r := s.sync()
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("sync: exit %d: %s", r.code, r.stderr)
			}
			got := s.gmail.Messages()
			if lost, dup, foreign := gmTally(seeded, got); lost != 0 || dup != 0 || len(foreign) != 0 {
				t.Fatalf("lost %d, duplicated %d, foreign %q", lost, dup, foreign)
			}
			var isp string
			for _, l := range s.gmail.Labels() {
				if l.Name == "ISP" {
					isp = l.ID
				}
			}
			for _, m := range got {
				if !slices.Equal(m.LabelIDs, []string{"INBOX", "UNREAD", isp}) {
					t.Errorf("labels %v, want INBOX, UNREAD, %s", m.LabelIDs, isp)
				}
				if !strings.HasPrefix(string(m.Raw), "X-Popfetch-ID: work.") {
					t.Errorf("message starts %q", m.Raw[:min(len(m.Raw), 40)])
				}
			}
			onServer := len(s.pop.Messages())
			if keep && onServer != len(seeded) || !keep && onServer != 0 {
				t.Errorf("%d messages on the POP server after the run", onServer)
			}
			// A second run fetches and imports nothing.
			imports := s.gmail.Requests("import")
			retrs := relCountCommands(s.pop, 0, "RETR")
			if r := s.sync(); r.code != 0 || r.stderr != "" {
				t.Fatalf("second sync: exit %d: %s", r.code, r.stderr)
			}
			if n := s.gmail.Requests("import"); n != imports {
				t.Errorf("second run: %d more imports", n-imports)
			}
			if n := relCountCommands(s.pop, 0, "RETR"); n != retrs {
				t.Errorf("second run: %d more RETRs", n-retrs)
			}
		})
	}
}

// sync --dry-run, check, list and --json work with a gmail destination; the dry run and check do not
// touch Gmail.
func TestGmailE2EOtherCommands(t *testing.T) {
	s := gmNew(t, false, nil, nil, "", false)
	seeded := relMessages("cmds", 3)
	s.pop.SetMessages(relToServer(seeded))
	if r := s.sync("--dry-run"); r.code != 0 || strings.Count(r.stdout, "retrieve") != 3 {
		t.Errorf("sync --dry-run: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := s.run("check"); r.code != 0 || !strings.Contains(r.stdout, "3 new") {
		t.Errorf("check: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := s.run("list", "work"); r.code != 0 || strings.Count(r.stdout, "cmds-uid-") != 3 {
		t.Errorf("list: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if n := s.gmail.Requests("import") + s.gmail.Requests("search"); n != 0 {
		t.Errorf("%d requests to Gmail before the real sync", n)
	}
	r := s.run("--json", "sync")
	var sum struct {
		Account  string `json:"account"`
		Fetched  int    `json:"fetched"`
		ExitCode int    `json:"exit_code"`
	}
	if r.code != 0 || json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &sum) != nil || sum.Fetched != 3 {
		t.Errorf("sync --json: exit %d, stdout %q (%+v), stderr %q", r.code, r.stdout, sum, r.stderr)
	}
	if r := s.run("config", "check"); r.code != 0 {
		t.Errorf("config check: exit %d: %s", r.code, r.stderr)
	}
}

// The access token expires in the middle of a run: popfetch refreshes it once (the destination's own
// refresh token, stored by `popfetch oauth2 login --deliver`) and goes on.
func TestRelGmailToken(t *testing.T) {
	relTrack(t)
	s := gmNew(t, false, nil, &oauth2test.Options{UniqueAccessTokens: true}, "", true)
	seeded := relMessages("refresh", 6)
	s.pop.SetMessages(relToServer(seeded))
	s.gmail.OnImported(func(n int) {
		if n == 2 {
			s.gmail.Expire("test-access-token-1") // issued by the login; expires after the second import
		}
	})
	refreshes := s.auth.Grants("refresh_token")
	r := s.sync()
	if r.code != 0 {
		t.Fatalf("sync: exit %d: %s", r.code, r.stderr)
	}
	if lost, dup, _ := gmTally(seeded, s.gmail.Messages()); lost != 0 || dup != 0 || len(s.pop.Messages()) != 0 {
		t.Errorf("lost %d, duplicated %d, %d left on the server", lost, dup, len(s.pop.Messages()))
	}
	if n := s.auth.Grants("refresh_token") - refreshes; n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
	lost, dup, _ := gmTally(seeded, s.gmail.Messages())
	relRecord("imap", "Gmail API (fake): the access token expires after the 2nd of 6 imports (401)",
		"refreshed it once with the destination's refresh token (from `popfetch oauth2 login --deliver`) and went on: all 6 imported once, server empty", r.code, lost, dup)

	// Revoked: exit 77 with the login command for the destination; nothing deleted.
	s.auth.Revoke()
	s.gmail.Expire("test-access-token-2")
	s.pop.SetMessages(relToServer(relMessages("revoked", 2)))
	r = s.sync()
	if r.code != 77 || !strings.Contains(r.stderr, "popfetch oauth2 login --deliver work") || len(s.pop.Messages()) != 2 {
		t.Errorf("after revocation: exit %d, %d on the server: %s", r.code, len(s.pop.Messages()), r.stderr)
	}
	relRecord("imap", "Gmail API (fake): the destination's refresh token revoked, token expired",
		"one line with `popfetch oauth2 login --deliver work`; both messages still on the POP server", r.code, 2-len(s.pop.Messages()), 0)
}

// 429 then success: the run waits as Retry-After says and succeeds, every message once.
func TestGmailE2E429ThenSuccess(t *testing.T) {
	s := gmNew(t, false, nil, nil, "", false)
	seeded := relMessages("429", 3)
	s.pop.SetMessages(relToServer(seeded))
	s.gmail.Fail("import", 3, 429, "rateLimitExceeded", "0")
	if r := s.sync(); r.code != 0 {
		t.Fatalf("sync: exit %d: %s", r.code, r.stderr)
	}
	if lost, dup, _ := gmTally(seeded, s.gmail.Messages()); lost != 0 || dup != 0 || len(s.pop.Messages()) != 0 {
		t.Errorf("lost %d, duplicated %d, %d left on the server", lost, dup, len(s.pop.Messages()))
	}
}

// Refusals: each exits with its code and one line naming the cause; nothing is deleted on the POP
// server; once Gmail accepts again, the next run delivers every message exactly once.
// The report's rows are in the hosted-mailbox section ("imap").
func TestRelGmailRefusals(t *testing.T) {
	relTrack(t)
	cases := []struct {
		name   string
		status int
		reason string
		code   int
		want   string
		did    string
	}{
		{"429 until the tries are used up", 429, "rateLimitExceeded", 75, "try again later",
			"6 tries honouring Retry-After, then one line naming the message and \"nothing was deleted on the POP server\"; all 3 messages still there"},
		{"403 insufficient scope", 403, "insufficientPermissions", 77, "popfetch oauth2 login --deliver work",
			"one line naming the missing scopes and `popfetch oauth2 login --deliver work`; all 3 messages still on the POP server"},
		{"400 bad message", 400, "invalidArgument", 74, `import of message UIDL "bad-uid-00`,
			"one line naming the refused message's UIDL; it stays on the POP server; once Gmail accepts it, the next run imports every message exactly once"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := gmNew(t, false, nil, nil, "", false)
			seeded := relMessages("bad", 3)
			s.pop.SetMessages(relToServer(seeded))
			n := -1
			if c.status == 400 {
				n = 1
			}
			s.gmail.Fail("import", n, c.status, c.reason, "0")
			r := s.sync()
			line, err := relOneLine(r.stderr, "work")
			t.Logf("exit %d: %s", r.code, line)
			if r.code != c.code || err != nil || !strings.Contains(line, c.want) {
				t.Fatalf("exit %d (want %d), stderr %q (%v), want it to contain %q", r.code, c.code, r.stderr, err, c.want)
			}
			if c.status == 400 {
				// The other two messages went in; the refused one stays on the server.
				if got := len(s.pop.Messages()); got == 0 {
					t.Errorf("the refused message was deleted on the server")
				}
			} else if got := len(s.pop.Messages()); got != 3 {
				t.Errorf("%d messages left on the server, want 3", got)
			}
			exit := fmt.Sprint(c.code)
			if c.status == 400 {
				if r := s.sync(); r.code != 0 {
					t.Fatalf("rerun: exit %d: %s", r.code, r.stderr)
				}
				exit += ", then 0"
			} else {
				if lost, dup, _ := gmTally(seeded, s.gmail.Messages()); dup != 0 || lost != 3 {
					t.Errorf("Gmail holds messages after the refusal: lost %d, duplicated %d", lost, dup)
				}
			}
			lost, dup, _ := gmTally(seeded, s.gmail.Messages())
			if c.status == 400 && (lost != 0 || dup != 0 || len(s.pop.Messages()) != 0) {
				t.Errorf("after the rerun: lost %d, duplicated %d, %d on the server", lost, dup, len(s.pop.Messages()))
			}
			if c.status != 400 {
				lost = 3 - len(s.pop.Messages()) // not in Gmail and not on the server
			}
			relRecord("imap", "Gmail API (fake): "+c.name+" on the import, 3 messages, delete mode", c.did, exit, lost, dup)
		})
	}
}

// Memory stays flat in message size: 20 messages of 5.5 MB go into Gmail with a peak RSS of at most
// 24 MiB (the bound for hosted destinations), measured with GNU time.
func TestGmailE2EMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 110 MB; skipped with -short")
	}
	if _, err := os.Stat(timeBin); err != nil {
		t.Skip("needs GNU time (" + timeBin + ")")
	}
	s := gmNew(t, false, nil, nil, "", false)
	var body strings.Builder
	for i := range 5 * 1024 * 1024 / 78 {
		fmt.Fprintf(&body, "line %07d %s\n", i, strings.Repeat("x", 65))
	}
	seeded := make([]relMessage, 20)
	for i := range seeded {
		seeded[i] = relMessage{UID: fmt.Sprintf("big-%02d", i),
			Data: []byte(fmt.Sprintf("Message-ID: <big-%d@example.org>\nSubject: big %d\n\n%s", i, i, body.String()))}
	}
	s.pop.SetMessages(relToServer(seeded))
	r, err := s.measure(2*relRunTimeout, "sync")
	if err != nil {
		t.Fatal(err)
	}
	if r.code != 0 {
		t.Fatalf("sync: exit %d: %s", r.code, r.stderr)
	}
	if lost, dup, _ := gmTally(seeded, s.gmail.Messages()); lost != 0 || dup != 0 {
		t.Fatalf("lost %d, duplicated %d", lost, dup)
	}
	t.Logf("20 × %d bytes into Gmail: peak RSS %d KiB, %v", len(seeded[0].Data), r.maxRSSKiB, r.took)
	if r.maxRSSKiB > 24<<10 {
		t.Errorf("peak RSS %d KiB, want at most 24 MiB", r.maxRSSKiB)
	}
}

// `popfetch config check` reports every mistake of a gmail block with FILE:LINE:COL and exits 78.
func TestGmailE2EConfigCheck(t *testing.T) {
	data, err := os.ReadFile("../../config/testdata/bad/gmail.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, "config.yaml", string(data), 0o600)
	r := popfetch(t, "", nil, "--config", path, "config", "check")
	if r.code != 78 {
		t.Fatalf("config check: exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{
		path + `:9:18: account "a": key "deliver.gmail.api_url": "http://gmail.example.com": use https://`,
		path + `:18:7: account "b": key "deliver.gmail.oauth2": missing (required)`,
		path + `:25:9: account "c": key "deliver.gmail.oauth2.scopes": must include https://www.googleapis.com/auth/gmail.readonly`,
		path + `:32:5: account "d": key "max_size": Gmail imports messages of up to 150 MB`,
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}
