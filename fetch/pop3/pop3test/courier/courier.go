// Package courier starts a private, real Courier POP3 server (Debian 12's courier-pop 1.0.16 with
// courier-authlib's authdaemond and its userdb module) for integration tests: POP3 with STLS
// (RFC 2595) and POP3 with implicit TLS (RFC 8314, through couriertls) on 127.0.0.1, configured from
// files generated in t.TempDir(), with a certificate made in Go.
//
// Courier is not installed: its Debian packages conflict with dovecot-pop3d. The script .ci/courier
// downloads them and unpacks them (dpkg-deb -x) into a directory, $POPFETCH_COURIER_DIR or
// /opt/popfetch-courier. Courier has a few paths compiled in (/etc/courier/authdaemonrc and
// userdb.dat, the authlib modules in /usr/lib/courier-authlib, the authdaemon socket in
// /run/courier), so Start runs it in private mount and PID namespaces, which needs root: there a
// read-only overlay adds the test's /etc/courier (and a "courier" system user, which Courier drops
// to for STLS) to /etc and the unpacked libraries to /usr/lib, and a tmpfs hides /run. Nothing
// outside the namespaces changes; a Dovecot on the same machine is not disturbed.
//
// Start skips the test when the unpacked Courier is absent, the system is not Linux or the test does
// not run as root, unless POPFETCH_REQUIRE_COURIER=1 is set (as CI does), in which case it fails
// the test. The server dies with the test: its first process is the init of the PID namespace, and
// killing it (Stop, registered with t.Cleanup; or the death of the test binary) kills every Courier
// process.
//
// What the generated configuration does that a user would notice:
//   - passwords are stored as {SHA256} hashes (USER/PASS, SASL PLAIN and LOGIN) and as
//     hmac-md5pw (SASL CRAM-MD5); Courier offers no APOP and no SCRAM;
//   - plaintext logins are allowed on the STLS port before STLS (POP3_TLS_REQUIRED=0);
//   - mail is owned by the "nobody" user, which Courier's pop3d runs as after the login;
//   - a user may hold up to 100 sessions from 127.0.0.1 at once.
//
// Courier itself: its login process (courierpop3login) reads the login, then execs pop3d, and
// whatever the client pipelined behind the login's last command is lost; it advertises UTF8
// (RFC 6856) and, unless the client sends UTF8, hands out a message whose header is not ASCII
// wrapped in a "Cannot display Unicode content" notice; a refused login is answered after 5
// seconds; QUIT is answered before the deleted messages are removed (Mailbox waits for the sessions
// to end); UIDLs are "UID<n>-<uidvalidity>", kept in the maildir's courierpop3dsizelist. Messages
// are stored with LF line endings, as Seed's callers must give them: Courier sends every LF as
// CRLF, so a stored CRLF goes out as CR CR LF.
package courier

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

// RequireEnv is the environment variable that turns "skip when Courier is unavailable" into a
// failure.
const RequireEnv = "POPFETCH_REQUIRE_COURIER"

// DirEnv names the directory .ci/courier unpacked Courier into (its root/ subdirectory holds the
// packages' files); DefaultDir is used when it is unset.
const (
	DirEnv     = "POPFETCH_COURIER_DIR"
	DefaultDir = "/opt/popfetch-courier"
)

// startTimeout bounds how long Start waits for Courier to accept connections; stopTimeout how long
// Stop waits for it to die.
const (
	startTimeout = 20 * time.Second
	stopTimeout  = 10 * time.Second
)

// User is a mailbox user with a password.
type User struct{ Name, Password string }

// Options configures Start. A nil *Options means the defaults.
type Options struct {
	Users []User // default: one user "alice" with password "secret"
}

// Server is a running Courier POP3 server.
type Server struct {
	POP3Addr  string // plain POP3 on 127.0.0.1:<port> that offers STLS
	POP3SAddr string // implicit TLS on 127.0.0.1:<port>

	CAPEM       []byte         // the CA that signed the server certificate, PEM
	CAPool      *x509.CertPool // the same CA as a pool
	Fingerprint [32]byte       // SHA-256 of the server certificate (leaf) DER

	// Mechanisms lists the SASL mechanisms Courier offers, upper case, as in its CAPA.
	Mechanisms []string
	// Version is the Debian package version that .ci/courier unpacked, such as
	// "courier-pop 1.0.16-3+b6".
	Version string

	t        testing.TB
	root     string // the unpacked packages
	dir      string
	maildirs map[string]string // user name -> maildir
	mailUID  int
	mailGID  int

	cmd    *exec.Cmd
	exited chan struct{}

	names realserver.Namer // names of seeded messages

	stopOnce sync.Once
	stopErr  error
	cleanups []func()
}

// mechanisms are the SASL mechanisms configured (POP3AUTH); CRAM-SHA1 and CRAM-SHA256 would need
// more userdb fields, and popfetch does not speak them.
var mechanisms = []string{"PLAIN", "LOGIN", "CRAM-MD5"}

// Dir returns the directory Courier is unpacked in: $POPFETCH_COURIER_DIR, or DefaultDir.
func Dir() string {
	if d := os.Getenv(DirEnv); d != "" {
		return d
	}
	return DefaultDir
}

// files that Start runs, relative to the unpacked root.
const (
	binLogin    = "usr/lib/courier/courier/courierpop3login"
	binPOP3d    = "usr/lib/courier/courier/courierpop3d"
	binTCPd     = "usr/sbin/couriertcpd"
	binTLS      = "usr/bin/couriertls"
	binAuthd    = "usr/lib/courier/courier-authlib/authdaemond"
	binMakedat  = "usr/lib/courier/courier-authlib/makedatprog"
	modUserdb   = "usr/lib/courier-authlib/libauthuserdb.so.0"
	authdSocket = "/run/courier/authdaemon/socket" // compiled into authlib
)

// Available reports whether Start can run Courier here, and if not, why.
func Available() error {
	if !supported {
		return errors.New("needs Linux (mount and PID namespaces)")
	}
	root := filepath.Join(Dir(), "root")
	for _, f := range []string{binLogin, binPOP3d, binTCPd, binTLS, binAuthd, binMakedat, modUserdb} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			return fmt.Errorf("not unpacked in %s (run .ci/courier): %v", Dir(), err)
		}
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root (it runs in private mount and PID namespaces)")
	}
	// pop3d runs as nobody, from the unpacked tree.
	for p := root; ; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s is not searchable by others, so Courier's pop3d (run as nobody) cannot be started from %s", p, root)
		}
		if p == filepath.Dir(p) {
			break
		}
	}
	for _, tool := range []string{"sh", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			return err
		}
	}
	return nil
}

// Start starts a private Courier for the test and stops it on t.Cleanup.
func Start(t testing.TB, opts *Options) *Server {
	t.Helper()
	realserver.Require(t, "courier", Available(), RequireEnv)
	s, err := start(t.TempDir(), opts, t.Logf)
	if err != nil {
		t.Fatalf("%v", err)
	}
	s.t = t
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("courier logs:\n%s", s.logs())
		}
		s.Stop()
	})
	return s
}

func start(dir string, opts *Options, logf func(string, ...any)) (_ *Server, err error) {
	if opts == nil {
		opts = &Options{}
	}
	users := opts.Users
	if len(users) == 0 {
		users = []User{{Name: "alice", Password: "secret"}}
	}
	for _, u := range users {
		if u.Name == "" || strings.ContainsAny(u.Name, ":/|\r\n\t %@\x00") || u.Password == "" || strings.ContainsAny(u.Password, "\r\n\x00") {
			return nil, fmt.Errorf("courier: unusable user %q / password %q", u.Name, u.Password)
		}
	}
	s := &Server{root: filepath.Join(Dir(), "root"), dir: dir, maildirs: map[string]string{},
		Mechanisms: mechanisms}
	defer func() {
		if err != nil {
			s.kill()
			for i := len(s.cleanups) - 1; i >= 0; i-- {
				s.cleanups[i]()
			}
		}
	}()
	if v, err := os.ReadFile(filepath.Join(Dir(), ".complete")); err == nil {
		s.Version = strings.TrimSpace(string(v))
	}
	if err := s.configure(users); err != nil {
		return nil, fmt.Errorf("courier: %v", err)
	}
	// The ports are chosen here and then handed to Courier, so another process can take one in
	// between; retry a few times when that happens.
	for attempt := 1; ; attempt++ {
		ports, err := realserver.FreePorts(2)
		if err != nil {
			return nil, fmt.Errorf("courier: %v", err)
		}
		s.POP3Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		s.POP3SAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
		err = s.start(ports[0], ports[1])
		if err == nil {
			return s, nil
		}
		s.kill()
		if attempt < 5 && errors.Is(err, errPortTaken) {
			logf("courier: port taken, retrying: %v", err)
			continue
		}
		return nil, fmt.Errorf("courier: %v\n%s", err, s.logs())
	}
}

// start runs the namespace's init (a shell script), which mounts the private paths and starts
// authdaemond and two couriertcpd, and waits until both ports are listened on by Courier (not merely
// accepting connections: another server may have taken a port meanwhile).
func (s *Server) start(pop3Port, pop3sPort int) error {
	s.cmd = nil
	out, err := os.OpenFile(s.path("init.log"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command("sh", s.path("init.sh"))
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(s.env(), "POP3_PORT="+strconv.Itoa(pop3Port), "POP3S_PORT="+strconv.Itoa(pop3sPort),
		"PATH="+os.Getenv("PATH"))
	cmd.SysProcAttr = sysProcAttr()
	exited, err := realserver.Start(cmd)
	if err != nil {
		return err
	}
	s.cmd, s.exited = cmd, exited

	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for _, port := range []int{pop3Port, pop3sPort} {
		for {
			ours, others, err := listeners(cmd.Process.Pid, port)
			if err != nil {
				return err
			}
			if others {
				return fmt.Errorf("%w: 127.0.0.1:%d", errPortTaken, port)
			}
			if ours {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("127.0.0.1:%d not listening after %v", port, startTimeout)
			}
			select {
			case <-s.exited:
				return fmt.Errorf("courier exited early: %v", cmd.ProcessState)
			case <-tick.C:
			}
		}
	}
	return nil
}

// errPortTaken: another process listens on a port Start chose.
var errPortTaken = errors.New("port taken by another process")

// Stop kills Courier (every process in its PID namespace) and waits until it is gone. It is safe to
// call more than once; Start registers it with t.Cleanup. A failure to stop fails the test.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.stopErr = s.kill()
		for i := len(s.cleanups) - 1; i >= 0; i-- {
			s.cleanups[i]()
		}
	})
	if s.stopErr != nil && s.t != nil {
		s.t.Errorf("courier: stop: %v", s.stopErr)
	}
}

// kill sends SIGKILL to the namespace's init: the kernel then kills every other process in the
// namespace, and the init is reaped only after they are all gone.
func (s *Server) kill() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	s.cmd.Process.Kill()
	select {
	case <-s.exited:
		return nil
	case <-time.After(stopTimeout):
		return fmt.Errorf("process %d did not exit", s.cmd.Process.Pid)
	}
}

func (s *Server) path(name string) string { return filepath.Join(s.dir, name) }

// logs returns Courier's logs (the last 64 KiB of each).
func (s *Server) logs() string {
	return realserver.Logs(s.path("init.log"), s.path("authdaemond.log"), s.path("pop3d.log"), s.path("pop3ds.log"))
}
