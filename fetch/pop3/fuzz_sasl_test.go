package pop3

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// FuzzSASLExchange plays a fuzzed server side of an AUTH exchange (RFC 5034) against the client:
// the server answers each line the client sends with the next line of the input, then hangs up.
// The client must not panic or hang, must never report success for SCRAM without verifying the
// server's signature (RFC 5802 §5), and must never show the secret in its trace.
func FuzzSASLExchange(f *testing.F) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	f.Add(byte(0), "+ "+b64("r=abc,s=c2FsdA==,i=4096")+"\n+OK")
	f.Add(byte(0), "+ "+b64("r=fyko+d2lbbFgONRv9qkxdawL,s=QSXCR+Q6sek8bf92,i=4096")+"\n+ "+b64("v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")+"\n+OK")
	f.Add(byte(1), "+ "+b64("r=x,s=,i=0")+"\n-ERR [AUTH] no")
	f.Add(byte(2), "+ "+b64("<1896.697170952@postoffice.example.net>")+"\n+OK")
	f.Add(byte(3), "+ "+b64("Username:")+"\n+ "+b64("Password:")+"\n+OK")
	f.Add(byte(4), "+ \n+OK")
	f.Add(byte(5), "+ "+b64(`{"status":"invalid_token"}`)+"\n-ERR [AUTH] bad token")
	f.Add(byte(6), "+ not base64 at all\n+OK")
	f.Add(byte(0), "+OK")
	f.Add(byte(1), "+ "+b64("r=x")+"\n+ garbage\n+ more\n+OK")
	mechs := []string{MechSCRAMSHA256, MechSCRAMSHA1, MechCRAMMD5, MechLogin, MechPlain, MechXOAUTH2, MechOAUTHBEARER}
	const secret = "fuzz-Secret-9d1c"
	f.Fuzz(func(t *testing.T, which byte, script string) {
		mech := mechs[int(which)%len(mechs)]
		cc, sc := net.Pipe()
		defer cc.Close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer sc.Close()
			sc.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(sc, "+OK ready <1.2@fuzz>\r\n"); err != nil {
				return
			}
			br := bufio.NewReader(sc)
			for _, line := range strings.Split(script, "\n") {
				if _, err := br.ReadString('\n'); err != nil {
					return
				}
				if _, err := io.WriteString(sc, strings.TrimSuffix(line, "\r")+"\r\n"); err != nil {
					return
				}
			}
		}()
		var trace bytes.Buffer
		c, err := NewClient(cc, &Options{Timeout: time.Second, Trace: &trace})
		if err != nil {
			<-done
			return
		}
		err = c.Auth(context.Background(), Credentials{Username: "alice", Secret: secret, Mechanism: mech, AllowPlaintext: true})
		cc.Close()
		<-done
		if err == nil && (mech == MechSCRAMSHA256 || mech == MechSCRAMSHA1) {
			t.Errorf("SCRAM succeeded against a server that cannot know the password; script %q", script)
		}
		if bytes.Contains(trace.Bytes(), []byte(secret)) || bytes.Contains(trace.Bytes(), []byte(b64("\x00alice\x00"+secret))) {
			t.Errorf("the trace shows the secret:\n%s", trace.String())
		}
	})
}
