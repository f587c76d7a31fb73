package pop3test_test

import (
	"fmt"
	"log"
	"net/textproto"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
)

// A server with one message, read by a raw client. In tests, use NewServer,
// which closes the server when the test ends.
func ExampleStart() {
	srv, err := pop3test.Start(&pop3test.Options{
		Messages: []pop3test.Message{{UID: "m1", Data: []byte("Subject: hi\n\n.signature\n")}},
		Faults:   []pop3test.Fault{{Command: "DELE", Reply: "-ERR [SYS/TEMP] try again later"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	c, err := textproto.Dial("tcp", srv.Addr())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.ReadLine() // greeting
	for _, cmd := range []string{"USER alice", "PASS secret", "UIDL 1", "RETR 1", "DELE 1", "QUIT"} {
		c.PrintfLine("%s", cmd)
		status, _ := c.ReadLine()
		fmt.Println(status)
		if cmd == "RETR 1" {
			lines, _ := c.ReadDotLines()
			fmt.Printf("%q\n", lines)
		}
	}
	// Output:
	// +OK
	// +OK Logged in.
	// +OK 1 m1
	// +OK 27 octets
	// ["Subject: hi" "" ".signature"]
	// -ERR [SYS/TEMP] try again later
	// +OK pop3test signing off (0 messages deleted)
}
