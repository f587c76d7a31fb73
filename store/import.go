package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Kinds of UIDL files `popfetch state import --from KIND FILE ACCOUNT` reads.
const (
	ImportFetchmail = "fetchmail" // ~/.fetchids
	ImportMpop      = "mpop"      // mpop's uidls file (~/.mpop_uidls or $XDG_STATE_HOME/mpop/uidls)
	ImportGetmail   = "getmail"   // getmail6's oldmail-<server>-<port>-<user>
)

// ImportedUID is one UIDL read from another fetcher's file; At is when that fetcher saw it, if the
// file says (getmail6 does), else the zero time. From is the kind of file it came from (ParseImport
// sets it); State.Import records it, so that the engine knows popfetch did not deliver the message
// itself.
type ImportedUID struct {
	UID  string
	At   time.Time
	From string
}

// ImportOptions name the account the import is for. In files that hold several accounts (fetchmail,
// mpop) they select one; a getmail6 file holds one account and its name says which (ReadImport checks
// it). User and Host both empty means: take the file's only account, whoever it is.
type ImportOptions struct {
	User string // the login user on the server, as the other fetcher wrote it
	Host string // the server's host name, as the other fetcher wrote it
	// Force imports a file whose account is not User at Host (a file that holds one account only):
	// for a server known under two names, say. Without it such a file is an *ImportAccountError.
	Force bool
}

// ImportFormatError is a file ParseImport could not read: not the format it was told, or no UIDLs
// for the account asked for.
type ImportFormatError struct {
	Kind   string
	Line   int // 1-based, 0 when not about one line
	Reason string
}

// Error names the kind of file, the line and what is wrong.
func (e *ImportFormatError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("store: import %s: line %d: %s", e.Kind, e.Line, e.Reason)
	}
	return fmt.Sprintf("store: import %s: %s", e.Kind, e.Reason)
}

// ImportAccountError is a file that says it belongs to another account than the one it is imported
// for (or, for getmail6, whose name does not say which account it belongs to). Importing it would
// mark another maildrop's UIDLs as delivered: messages never fetched could then be skipped, or deleted.
type ImportAccountError struct {
	Kind   string
	File   string // the file's path or name, "" when parsing a stream
	Want   string // user@host of the account being imported into
	Reason string
	// Ambiguous: the file holds several accounts, none of them Want; Force cannot choose.
	Ambiguous bool
}

// Error says whose the file is, whose it should be, and how to import it anyway.
func (e *ImportAccountError) Error() string {
	s := "store: import " + e.Kind + ": "
	if e.File != "" {
		s += e.File + ": "
	}
	if e.Ambiguous {
		return s + e.Reason + " (importing for " + e.Want + "; it holds several accounts, so --force cannot choose)"
	}
	return s + e.Reason + " (importing for " + e.Want + "; --force imports it anyway)"
}

// maxImportLine bounds one line of an imported file, so that a hostile file cannot exhaust memory; mpop's own limit is smaller.
const maxImportLine = 1 << 20

// ParseImport reads the UIDLs of one account from another fetcher's UIDL file:
//
//   - fetchmail ".fetchids": lines "user@server UID" (fetchmail's uid.c: the user part may contain
//     spaces and '@', the host follows the last '@' before the first space after an '@'; user and
//     host compare case-insensitively, as fetchmail does).
//   - mpop "uidls": '#' comments at the top, then for each account a line " N host user" (starting
//     with a space) followed by exactly N UIDs, one per line (mpop's uidls.c; host and user compare
//     exactly).
//   - getmail6 "oldmail-*": lines "UID\0EPOCH" (the time getmail first saw the message); lines
//     without a NUL are skipped, as getmail does.
//
// Lines may end in LF or CRLF.
func ParseImport(kind string, r io.Reader, opts ImportOptions) ([]ImportedUID, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxImportLine)
	var (
		ids []ImportedUID
		err error
	)
	switch kind {
	case ImportFetchmail:
		ids, err = parseFetchids(sc, opts)
	case ImportMpop:
		ids, err = parseMpop(sc, opts)
	case ImportGetmail:
		ids, err = parseGetmail(sc)
	default:
		return nil, fmt.Errorf("store: import: unknown kind %q (want %s, %s or %s)", kind,
			ImportFetchmail, ImportMpop, ImportGetmail)
	}
	if err == nil {
		err = sc.Err()
	}
	if err != nil {
		switch err.(type) {
		case *ImportFormatError, *ImportAccountError:
		default:
			err = &ImportFormatError{Kind: kind, Reason: err.Error()}
		}
		return nil, err
	}
	for i := range ids {
		ids[i].From = kind
	}
	return ids, nil
}

// line returns the scanner's line without a trailing CR.
func line(sc *bufio.Scanner) string {
	return strings.TrimSuffix(sc.Text(), "\r")
}

// parseFetchids reads fetchmail's .fetchids, following initialize_saved_lists() in fetchmail's uid.c.
func parseFetchids(sc *bufio.Scanner, opts ImportOptions) ([]ImportedUID, error) {
	accts := newImportAccounts()
	for sc.Scan() {
		l := strings.TrimLeft(line(sc), " \t")
		at := strings.IndexByte(l, '@')
		if at < 0 {
			continue
		}
		sp := strings.IndexByte(l[at:], ' ')
		if sp < 0 {
			continue
		}
		userhost := strings.TrimRight(l[:at+sp], " \t")
		id := strings.TrimLeft(l[at+sp:], " ")
		if i := strings.IndexAny(id, " \t"); i >= 0 {
			id = id[:i]
		}
		if id == "" {
			continue
		}
		last := strings.LastIndexByte(userhost, '@')
		user, host := userhost[:last], userhost[last+1:]
		// fetchmail compares user and host case-insensitively.
		match := (opts.User == "" || strings.EqualFold(user, opts.User)) &&
			(opts.Host == "" || strings.EqualFold(host, opts.Host))
		accts.add(strings.ToLower(userhost), userhost, match, id)
	}
	return accts.pick(ImportFetchmail, opts)
}

// importAccounts collects the UIDLs of each account of a file that holds several.
type importAccounts struct {
	names   []string // user@host of every account, as first written, in order
	keys    []string // their keys, in the same order
	ids     map[string][]ImportedUID
	matched map[string]bool // accounts that ImportOptions select
}

func newImportAccounts() *importAccounts {
	return &importAccounts{ids: map[string][]ImportedUID{}, matched: map[string]bool{}}
}

// add records that account key (written as name) has uid; match says whether ImportOptions select it.
// An empty uid only makes the account known.
func (a *importAccounts) add(key, name string, match bool, uid string) {
	if _, ok := a.ids[key]; !ok {
		a.ids[key] = nil
		a.names = append(a.names, name)
		a.keys = append(a.keys, key)
	}
	if match {
		a.matched[key] = true
	}
	if uid != "" {
		a.ids[key] = append(a.ids[key], ImportedUID{UID: uid})
	}
}

// pick returns the UIDLs of the one selected account. No account selected is an
// *ImportAccountError, unless opts.Force and the file holds a single account, which is taken.
func (a *importAccounts) pick(kind string, opts ImportOptions) ([]ImportedUID, error) {
	switch {
	case len(a.names) == 0:
		return nil, &ImportFormatError{Kind: kind, Reason: "no UIDLs in the file"}
	case len(a.matched) > 1:
		return nil, &ImportFormatError{Kind: kind, Reason: fmt.Sprintf("the file holds several accounts (%s): give the user and host",
			strings.Join(a.names, ", "))}
	case len(a.matched) == 1:
		for key := range a.matched {
			return a.ids[key], nil
		}
	case opts.Force && len(a.names) == 1:
		return a.ids[a.keys[0]], nil
	}
	return nil, &ImportAccountError{Kind: kind, Want: opts.User + "@" + opts.Host, Ambiguous: len(a.names) > 1,
		Reason: fmt.Sprintf("no UIDLs for user %q at host %q; the file has: %s", opts.User, opts.Host,
			strings.Join(a.names, ", "))}
}

// parseMpop reads mpop's uidls file, following uidls_read() in mpop's uidls.c.
func parseMpop(sc *bufio.Scanner, opts ImportOptions) ([]ImportedUID, error) {
	var (
		accts      = newImportAccounts()
		key        string // the current list's account
		allowNotes = true
		left       int // UIDs still expected in the current list
		lineNo     int
	)
	for sc.Scan() {
		lineNo++
		l := line(sc)
		if allowNotes {
			if strings.HasPrefix(l, "#") {
				continue
			}
			// mpop allows comments only before the first list, so that UIDs may start with '#'.
			allowNotes = false
		}
		if left == 0 {
			if !strings.HasPrefix(l, " ") {
				return nil, &ImportFormatError{Kind: ImportMpop, Line: lineNo, Reason: "UID without a list (expected \" N host user\")"}
			}
			f := strings.Split(l[1:], " ")
			if len(f) != 3 || f[1] == "" || f[2] == "" {
				return nil, &ImportFormatError{Kind: ImportMpop, Line: lineNo, Reason: "expected \" N host user\""}
			}
			n, err := strconv.Atoi(f[0])
			if err != nil || n < 1 {
				return nil, &ImportFormatError{Kind: ImportMpop, Line: lineNo, Reason: "invalid number of UIDs"}
			}
			host, user := f[1], f[2]
			key = user + "@" + host
			// mpop compares host and user exactly.
			accts.add(key, key, (opts.User == "" || opts.User == user) && (opts.Host == "" || opts.Host == host), "")
			left = n
			continue
		}
		if strings.HasPrefix(l, " ") {
			return nil, &ImportFormatError{Kind: ImportMpop, Line: lineNo, Reason: "too few UIDs in the list"}
		}
		if l != "" { // mpop would keep an empty UID; no server sends one
			accts.add(key, key, false, l)
		}
		left--
	}
	if left > 0 {
		return nil, &ImportFormatError{Kind: ImportMpop, Line: lineNo, Reason: "too few UIDs in the last list"}
	}
	return accts.pick(ImportMpop, opts)
}

// parseGetmail reads getmail6's oldmail file, following _read_oldmailfile() in getmail6's
// retrieverbases.py: strip each line, skip those without a NUL, split at the first NUL.
func parseGetmail(sc *bufio.Scanner) ([]ImportedUID, error) {
	var ids []ImportedUID
	lineNo := 0
	for sc.Scan() {
		lineNo++
		l := bytes.TrimSpace(sc.Bytes())
		uid, ts, ok := bytes.Cut(l, []byte{0})
		if !ok {
			continue
		}
		sec, err := strconv.ParseInt(string(ts), 10, 64)
		if err != nil || len(uid) == 0 {
			return nil, &ImportFormatError{Kind: ImportGetmail, Line: lineNo, Reason: "expected UID, NUL, seconds since 1970"}
		}
		var at time.Time
		if sec > 0 {
			at = time.Unix(sec, 0).UTC()
		}
		ids = append(ids, ImportedUID{UID: string(uid), At: at})
	}
	if len(ids) == 0 {
		return nil, &ImportFormatError{Kind: ImportGetmail, Reason: "no UIDLs in the file"}
	}
	return ids, nil
}

// ReadImport opens path and parses it as kind (ParseImport), after checking, for a getmail6 file,
// that its name belongs to opts' account (CheckGetmailName). It does not touch any state: the CLI
// calls it before taking the account's lock, so that a file that never ends (a FIFO nobody writes)
// does not hold the lock. A file that cannot be read is an *IOError; one that cannot be parsed an
// *ImportFormatError; one of another account an *ImportAccountError.
func ReadImport(kind, path string, opts ImportOptions) ([]ImportedUID, error) {
	if kind == ImportGetmail && !opts.Force && (opts.User != "" || opts.Host != "") {
		if err := CheckGetmailName(filepath.Base(path), opts.User, opts.Host); err != nil {
			err.File = path
			return nil, err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, ioErr("open", path, err)
	}
	defer f.Close()
	ids, err := ParseImport(kind, f, opts)
	if err != nil {
		var ae *ImportAccountError
		if errors.As(err, &ae) {
			ae.File = path
			return nil, ae
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ids, nil
}

// getmailStrip is what getmail6 replaces by '-' in an oldmail file name (STRIP_CHAR_RE in its
// _retrieverbases.py; getmail 4 and 5 replaced '/' and ':' one by one).
const getmailStrip = "/\\:;<>|"

// getmailNamePart is s as it appears in a getmail6 oldmail file name: runs of getmailStrip
// characters, and of '-', become one '-', so that getmail 4, 5 and 6 names compare equal.
func getmailNamePart(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range s {
		if r == '-' || strings.ContainsRune(getmailStrip, r) {
			if !dash {
				b.WriteByte('-')
			}
			dash = true
			continue
		}
		dash = false
		b.WriteRune(r)
	}
	return b.String()
}

// CheckGetmailName checks that name, the base name of a getmail6 oldmail file, belongs to user at
// host: getmail6 names it "oldmail-SERVER-PORT-USER" (SERVER compared case-insensitively; PORT is
// not compared, as the same maildrop may be reached on 110 and 995). A name of another shape says
// nothing about its account and is refused too (the caller's --force imports it anyway).
func CheckGetmailName(name, user, host string) *ImportAccountError {
	want := user + "@" + host
	rest, ok := strings.CutPrefix(name, "oldmail-")
	if !ok {
		return &ImportAccountError{Kind: ImportGetmail, Want: want,
			Reason: fmt.Sprintf("the name %q does not say which account the file belongs to (getmail names it oldmail-SERVER-PORT-USER)", name)}
	}
	rest = getmailNamePart(rest)
	h, u := getmailNamePart(host)+"-", "-"+getmailNamePart(user)
	if len(rest) > len(h)+len(u) && strings.EqualFold(rest[:len(h)], h) && strings.HasSuffix(rest, u) {
		port := rest[len(h) : len(rest)-len(u)]
		if _, err := strconv.ParseUint(port, 10, 16); err == nil {
			return nil
		}
	}
	return &ImportAccountError{Kind: ImportGetmail, Want: want,
		Reason: fmt.Sprintf("the name %q says it belongs to another account (getmail names it oldmail-SERVER-PORT-USER)", name)}
}

// ImportFile is ReadImport, then State.Import of what it read: it adds the file's UIDLs to st as
// delivered by another fetcher (at, when the file has no times), returning how many were new. The
// caller holds the account's Lock.
func ImportFile(st *State, kind, path string, opts ImportOptions, at time.Time) (int, error) {
	ids, err := ReadImport(kind, path, opts)
	if err != nil {
		return 0, err
	}
	return st.Import(ids, at)
}
