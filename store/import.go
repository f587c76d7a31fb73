package store

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
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
// file says (getmail6 does), else the zero time.
type ImportedUID struct {
	UID string
	At  time.Time
}

// ImportOptions select the account in files that hold several (fetchmail, mpop). Both empty means:
// the file must hold exactly one account. getmail6 keeps one file per account and ignores them.
type ImportOptions struct {
	User string // the login user on the server, as the other fetcher wrote it
	Host string // the server's host name, as the other fetcher wrote it
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

// maxImportLine bounds one line of an imported file (STYLE #7); mpop's own limit is smaller.
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
		if _, ok := err.(*ImportFormatError); !ok {
			err = &ImportFormatError{Kind: kind, Reason: err.Error()}
		}
		return nil, err
	}
	return ids, nil
}

// line returns the scanner's line without a trailing CR.
func line(sc *bufio.Scanner) string {
	return strings.TrimSuffix(sc.Text(), "\r")
}

// parseFetchids reads fetchmail's .fetchids, following initialize_saved_lists() in fetchmail's uid.c.
func parseFetchids(sc *bufio.Scanner, opts ImportOptions) ([]ImportedUID, error) {
	var (
		ids   []ImportedUID
		all   []string // user@host of every account in the file, in order
		known = map[string]bool{}
		taken = map[string]bool{} // accounts selected by opts
	)
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
		key := strings.ToLower(userhost) // fetchmail compares user and host case-insensitively
		if !known[key] {
			known[key] = true
			all = append(all, userhost)
		}
		last := strings.LastIndexByte(userhost, '@')
		user, host := userhost[:last], userhost[last+1:]
		if (opts.User != "" && !strings.EqualFold(user, opts.User)) ||
			(opts.Host != "" && !strings.EqualFold(host, opts.Host)) {
			continue
		}
		taken[key] = true
		ids = append(ids, ImportedUID{UID: id})
	}
	return pickAccount(ImportFetchmail, ids, all, len(taken), opts)
}

// pickAccount checks that the selection found exactly one account's UIDLs.
func pickAccount(kind string, ids []ImportedUID, all []string, matched int, opts ImportOptions) ([]ImportedUID, error) {
	switch {
	case len(all) == 0:
		return nil, &ImportFormatError{Kind: kind, Reason: "no UIDLs in the file"}
	case matched == 0:
		return nil, &ImportFormatError{Kind: kind, Reason: fmt.Sprintf("no UIDLs for user %q at host %q; the file has: %s",
			opts.User, opts.Host, strings.Join(all, ", "))}
	case matched > 1:
		return nil, &ImportFormatError{Kind: kind, Reason: fmt.Sprintf("the file holds several accounts (%s): give the user and host",
			strings.Join(all, ", "))}
	}
	return ids, nil
}

// parseMpop reads mpop's uidls file, following uidls_read() in mpop's uidls.c.
func parseMpop(sc *bufio.Scanner, opts ImportOptions) ([]ImportedUID, error) {
	var (
		ids        []ImportedUID
		all        []string
		matched    int
		n          int
		allowNotes = true
		left       int  // UIDs still expected in the current list
		take       bool // whether the current list is the selected account
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
			var err error
			if n, err = strconv.Atoi(f[0]); err != nil || n < 1 {
				return nil, &ImportFormatError{Kind: ImportMpop, Line: lineNo, Reason: "invalid number of UIDs"}
			}
			host, user := f[1], f[2]
			all = append(all, user+"@"+host)
			take = (opts.User == "" || opts.User == user) && (opts.Host == "" || opts.Host == host)
			if take {
				matched++
			}
			left = n
			continue
		}
		if strings.HasPrefix(l, " ") {
			return nil, &ImportFormatError{Kind: ImportMpop, Line: lineNo, Reason: "too few UIDs in the list"}
		}
		if take && l != "" { // mpop would keep an empty UID; no server sends one
			ids = append(ids, ImportedUID{UID: l})
		}
		left--
	}
	if left > 0 {
		return nil, &ImportFormatError{Kind: ImportMpop, Line: lineNo, Reason: "too few UIDs in the last list"}
	}
	return pickAccount(ImportMpop, ids, all, matched, opts)
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

// ImportFile is what `popfetch state import --from KIND FILE ACCOUNT` calls: it parses path as kind
// and adds its UIDLs to st as delivered (at, when the file has no times), returning how many were
// new. The caller holds the account's Lock. A file that cannot be read is an *IOError; one that
// cannot be parsed an *ImportFormatError.
func ImportFile(st *State, kind, path string, opts ImportOptions, at time.Time) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, ioErr("open", path, err)
	}
	defer f.Close()
	ids, err := ParseImport(kind, f, opts)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return st.Import(ids, at)
}
