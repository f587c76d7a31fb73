// Package dovecot starts a private, real Dovecot for integration tests: POP3 with implicit TLS
// (RFC 8314) and POP3 with STLS (RFC 2595) on 127.0.0.1, and optionally LMTP (RFC 2033) on a unix
// socket, and optionally IMAP (implicit TLS and STARTTLS; Options.IMAP, with a quota, a reduced
// capability list or XOAUTH2 on request), all configured from files generated in t.TempDir(), with a
// certificate made in Go. IMAPMailbox reads a mailbox back as an IMAP client sees it.
// StartServer does the same outside a test, for programs such as the benchmark in bench/.
//
// Start skips the test when no dovecot binary is installed, unless POPFETCH_REQUIRE_DOVECOT=1 is set
// (as CI does), in which case it fails the test. The server dies with the test: it runs in its own
// process group, which Stop (registered with t.Cleanup) kills as a whole; on Linux the master also
// dies with the test binary.
//
// Running as root, Dovecot refuses mail processes with UID 0 and drops its login processes to an
// unprivileged user, so the mailboxes belong to the "dovecot" system user (created by the
// dovecot-core package; "nobody" otherwise) and the login processes run as "dovenull"; the
// test's temporary directories are opened to them (mode 0755). Running as an ordinary user, every
// process runs as that user. No process is chrooted.
//
// What the generated configuration does that a user would notice:
//   - every password is stored {PLAIN}, so USER/PASS, APOP and every SASL mechanism in
//     Server.Mechanisms work; disable_plaintext_auth = no, also on the plain port;
//   - a refused login is answered "-ERR [AUTH] Authentication failed." within about half a second,
//     and failures do not slow down later logins (no auth penalty);
//   - UIDLs are pop3_uidl_format = %08Xu%08Xv: 16 lower-case hex digits;
//   - LMTP accepts any domain: RCPT TO:<alice@example.org> delivers to alice;
//   - a user may hold up to 1,000 sessions at once (Dovecot's default is 10 per user and IP).
//
// Dovecot itself: LIST sizes count CRLF line endings; a message that does not end with a line
// ending (even an empty one) is sent with CRLF added before the terminating dot.
package dovecot

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test/realserver"
)

// RequireEnv is the environment variable that turns "skip when Dovecot is absent" into a failure.
const RequireEnv = "POPFETCH_REQUIRE_DOVECOT"

// startTimeout bounds how long Start waits for Dovecot to accept connections; stopTimeout bounds
// how long Stop waits for its processes to disappear.
const (
	startTimeout = 20 * time.Second
	stopTimeout  = 10 * time.Second
)

// User is a mailbox user with a plaintext password (stored as {PLAIN}, so that APOP, CRAM-MD5 and
// SCRAM work).
type User struct{ Name, Password string }

// Options configures Start. A nil *Options means the defaults.
type Options struct {
	Users []User // default: one user "alice" with password "secret"
	LMTP  bool   // also start LMTP on a unix socket (Server.LMTPSocket)
	// IMAP also starts IMAP (RFC 9051) on 127.0.0.1: implicit TLS (Server.IMAPSAddr) and plain with
	// STARTTLS (Server.IMAPAddr), on the same users and mailboxes.
	IMAP bool
	// Quota, when not "", enables Dovecot's quota plugin for every user with this storage limit
	// (a quota_rule value such as "64K"); an APPEND beyond it is refused "NO [OVERQUOTA]".
	Quota string
	// OAuth also offers the SASL mechanisms XOAUTH2 and OAUTHBEARER; Dovecot checks the bearer token
	// as the user's password (so a test's token is the password of a User).
	OAuth bool
	// IMAPCapability, when not "", replaces the capabilities Dovecot's IMAP advertises after login
	// (imap_capability), e.g. to play a server without LITERAL+ or MULTIAPPEND.
	IMAPCapability string
}

// Server is a running Dovecot.
type Server struct {
	POP3SAddr  string // implicit TLS on 127.0.0.1:<port>
	POP3Addr   string // plain POP3 on 127.0.0.1:<port> that offers STLS
	LMTPSocket string // unix socket path when Options.LMTP
	IMAPSAddr  string // with Options.IMAP: IMAP with implicit TLS on 127.0.0.1:<port>
	IMAPAddr   string // with Options.IMAP: plain IMAP on 127.0.0.1:<port> that offers STARTTLS

	CAPEM       []byte         // the CA that signed the server certificate, PEM
	CAPool      *x509.CertPool // the same CA as a pool
	Fingerprint [32]byte       // SHA-256 of the server certificate (leaf) DER

	// Mechanisms lists the auth_mechanisms configured, lower case (APOP included).
	Mechanisms []string

	t        testing.TB // nil for StartServer
	dir      string
	logPath  string
	errPath  string
	mailUID  int // -1: do not chown
	mailGID  int
	maildirs map[string]string // user name -> maildir

	cmd    *exec.Cmd
	exited chan struct{} // closed when the master process has been reaped

	names realserver.Namer // names of seeded messages

	stopOnce  sync.Once
	stopErr   error
	closeOnce sync.Once
	cleanups  []func() // run by Close, or when startIn fails
}

// Available reports whether a dovecot binary is installed.
func Available() bool {
	_, err := binary()
	return err == nil
}

func binary() (string, error) {
	if !supported {
		return "", errors.New("dovecot: not supported on this system")
	}
	if p, err := exec.LookPath("dovecot"); err == nil {
		return p, nil
	}
	// root's PATH usually has sbin, an ordinary user's often does not.
	for _, p := range []string{"/usr/sbin/dovecot", "/usr/local/sbin/dovecot"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("dovecot binary not found (apt-get install dovecot-core dovecot-pop3d dovecot-lmtpd)")
}

// Start starts a private Dovecot for the test and stops it on t.Cleanup.
func Start(t testing.TB, opts *Options) *Server {
	t.Helper()
	_, err := binary()
	realserver.Require(t, "dovecot", err, RequireEnv)
	s, err := startIn(t.TempDir(), opts, t.Logf)
	if err != nil {
		t.Fatalf("%v", err)
	}
	s.t = t
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dovecot logs:\n%s", s.logs())
		}
		s.Stop()
	})
	return s
}

// StartServer starts a private Dovecot outside a test (a benchmark program, for instance), in a
// new temporary directory. The caller must call Close, which stops it and removes the directory;
// on Linux the server also dies with the calling process. It fails when no dovecot binary is
// installed.
func StartServer(opts *Options) (*Server, error) {
	if _, err := binary(); err != nil {
		return nil, fmt.Errorf("dovecot: %v", err)
	}
	dir, err := os.MkdirTemp("", "popfetch-dovecot")
	if err != nil {
		return nil, fmt.Errorf("dovecot: %v", err)
	}
	s, err := startIn(dir, opts, func(string, ...any) {})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.cleanups = append(s.cleanups, func() { os.RemoveAll(dir) })
	return s, nil
}

// Close stops a server started by StartServer and removes its files. It is safe to call more than
// once.
func (s *Server) Close() error {
	err := s.stop()
	s.closeOnce.Do(func() {
		for i := len(s.cleanups) - 1; i >= 0; i-- {
			s.cleanups[i]()
		}
	})
	return err
}

// startIn configures Dovecot in dir and starts it. logf reports retries.
func startIn(dir string, opts *Options, logf func(format string, args ...any)) (_ *Server, err error) {
	bin, err := binary()
	if err != nil {
		return nil, fmt.Errorf("dovecot: %v", err)
	}
	if opts == nil {
		opts = &Options{}
	}
	users := opts.Users
	if len(users) == 0 {
		users = []User{{Name: "alice", Password: "secret"}}
	}
	for _, u := range users {
		if u.Name == "" || strings.ContainsAny(u.Name, ":/\r\n\t %@\x00") || strings.ContainsAny(u.Password, ":\r\n\x00") {
			return nil, fmt.Errorf("dovecot: unusable user %q / password %q", u.Name, u.Password)
		}
	}

	s := &Server{dir: dir, maildirs: map[string]string{}}
	defer func() {
		if err != nil {
			for i := len(s.cleanups) - 1; i >= 0; i-- {
				s.cleanups[i]()
			}
		}
	}()
	s.logPath = filepath.Join(s.dir, "dovecot.log")
	s.errPath = filepath.Join(s.dir, "dovecot.stderr")

	ids, err := chooseIdentities()
	if err != nil {
		return nil, fmt.Errorf("dovecot: %v", err)
	}
	s.mailUID, s.mailGID = ids.mailUID, ids.mailGID
	if os.Geteuid() != 0 {
		s.mailUID = -1
	}
	if err := s.openPath(); err != nil {
		return nil, fmt.Errorf("dovecot: %v", err)
	}

	// Sockets live in base_dir; sun_path holds 107 bytes, which a long test name can exceed.
	runDir := filepath.Join(s.dir, "run")
	if len(runDir) > 60 {
		runDir, err = os.MkdirTemp("", "dovecot")
		if err != nil {
			return nil, fmt.Errorf("dovecot: %v", err)
		}
		s.cleanups = append(s.cleanups, func() { os.RemoveAll(runDir) })
	} else if err := os.Mkdir(runDir, 0o755); err != nil {
		return nil, fmt.Errorf("dovecot: %v", err)
	}
	if err := os.Chmod(runDir, 0o755); err != nil {
		return nil, fmt.Errorf("dovecot: %v", err)
	}
	if opts.LMTP {
		s.LMTPSocket = filepath.Join(runDir, "lmtp")
	}

	certPath, keyPath, err := s.writeCertificates()
	if err != nil {
		return nil, fmt.Errorf("dovecot: certificates: %v", err)
	}
	passwdPath, err := s.writeUsers(users)
	if err != nil {
		return nil, fmt.Errorf("dovecot: users: %v", err)
	}
	s.Mechanisms = mechanisms(bin)

	cfg := config{
		baseDir:    filepath.Join(runDir, "base"),
		stateDir:   filepath.Join(s.dir, "state"),
		logPath:    s.logPath,
		instance:   "popfetch-" + realserver.RandomHex(4),
		certPath:   certPath,
		keyPath:    keyPath,
		passwdPath: passwdPath,
		mechs:      s.Mechanisms,
		oauth:      opts.OAuth,
		imapCaps:   opts.IMAPCapability,
		lmtpSocket: s.LMTPSocket,
		imap:       opts.IMAP,
		quota:      opts.Quota,
		ids:        ids,
	}
	if err := os.Mkdir(cfg.stateDir, 0o755); err != nil {
		return nil, fmt.Errorf("dovecot: %v", err)
	}
	confPath := filepath.Join(s.dir, "dovecot.conf")

	// The ports are chosen here and then handed to Dovecot, so another process can take one in
	// between; retry a few times when that happens.
	for attempt := 1; ; attempt++ {
		ports, err := realserver.FreePorts(4)
		if err != nil {
			return nil, fmt.Errorf("dovecot: %v", err)
		}
		cfg.pop3Port, cfg.pop3sPort = ports[0], ports[1]
		if opts.IMAP {
			cfg.imapPort, cfg.imapsPort = ports[2], ports[3]
			s.IMAPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.imapPort))
			s.IMAPSAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.imapsPort))
		}
		if err := os.WriteFile(confPath, []byte(cfg.render()), 0o644); err != nil {
			return nil, fmt.Errorf("dovecot: %v", err)
		}
		s.POP3Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.pop3Port))
		s.POP3SAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.pop3sPort))
		err = s.start(bin, confPath)
		if err == nil {
			break
		}
		s.kill()
		if attempt < 3 && strings.Contains(s.logs(), "Address already in use") {
			logf("dovecot: port taken, retrying: %v", err)
			os.Remove(s.logPath)
			os.Remove(s.errPath)
			continue
		}
		return nil, fmt.Errorf("dovecot: %v\n%s", err, s.logs())
	}
	return s, nil
}

// start runs the master process in the foreground, in its own process group, and waits until the
// listeners accept connections.
func (s *Server) start(bin, confPath string) error {
	stderr, err := os.OpenFile(s.errPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer stderr.Close()
	cmd := exec.Command(bin, "-F", "-c", confPath)
	cmd.Dir = s.dir
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	// Its own process group, which Stop kills; on Linux, the master also dies with the test binary
	// (and Dovecot's children exit when their master is gone).
	cmd.SysProcAttr = sysProcAttr()
	exited, err := realserver.Start(cmd)
	if err != nil {
		return err
	}
	s.cmd, s.exited = cmd, exited

	deadline := time.Now().Add(startTimeout)
	waitFor := func(network, addr string) error {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			c, err := net.DialTimeout(network, addr, time.Second)
			if err == nil {
				c.Close()
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s %s not accepting connections after %v: %v", network, addr, startTimeout, err)
			}
			select {
			case <-s.exited:
				return fmt.Errorf("dovecot exited early: %v", cmd.ProcessState)
			case <-tick.C:
			}
		}
	}
	for _, addr := range []string{s.POP3Addr, s.POP3SAddr, s.IMAPAddr, s.IMAPSAddr} {
		if addr == "" {
			continue
		}
		if err := waitFor("tcp", addr); err != nil {
			return err
		}
	}
	if s.LMTPSocket != "" {
		if err := waitFor("unix", s.LMTPSocket); err != nil {
			return err
		}
	}
	return nil
}

// Stop kills Dovecot and every process it started, and waits until they are gone. It is safe to
// call more than once; Start registers it with t.Cleanup. A failure to stop fails the test (a
// server from StartServer: use Close, which returns it).
func (s *Server) Stop() {
	if err := s.stop(); err != nil && s.t != nil {
		s.t.Errorf("%v", err)
	}
}

func (s *Server) stop() error {
	s.stopOnce.Do(func() {
		if err := s.kill(); err != nil {
			s.stopErr = fmt.Errorf("dovecot: stop: %v", err)
		}
	})
	return s.stopErr
}

// kill sends SIGKILL to the process group (Dovecot keeps no state worth a graceful shutdown, which
// takes it about two seconds), reaps the master, and checks that no group member survives.
func (s *Server) kill() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	pgid := s.cmd.Process.Pid
	killGroup(pgid)
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		return fmt.Errorf("master process %d did not exit", pgid)
	}
	deadline := time.Now().Add(stopTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		left := groupMembers(pgid)
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes left in group %d: %v", pgid, left)
		}
		killGroup(pgid)
		<-tick.C
	}
}

// logs returns Dovecot's log and stderr, the last 64 KiB of each.
func (s *Server) logs() string { return realserver.Logs(s.errPath, s.logPath) }
