package imapclient

// popfetch addition: MULTIAPPEND (RFC 3502), not in upstream v2.0.0-beta.8.

import (
	"io"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal"
)

// MultiAppend starts an APPEND command that carries several messages (RFC 3502 MULTIAPPEND, when
// the server advertises it). The server appends all of them or none: one tagged OK for the batch.
//
// The caller calls Message for each message, writes exactly size octets to the writer it returns
// and closes it, then calls MultiAppendCommand.Close, then Wait.
func (c *Client) MultiAppend(mailbox string) *MultiAppendCommand {
	cmd := &MultiAppendCommand{}
	cmd.enc = c.beginCommand("APPEND", cmd)
	cmd.enc.SP().Mailbox(mailbox)
	return cmd
}

// MultiAppendCommand is an APPEND command with several messages.
type MultiAppendCommand struct {
	commandBase
	enc *commandEncoder
}

// Message adds one message of size octets; the caller writes them to the returned writer and
// closes it before the next call.
func (cmd *MultiAppendCommand) Message(size int64, options *imap.AppendOptions) io.WriteCloser {
	cmd.enc.SP()
	if options != nil && len(options.Flags) > 0 {
		cmd.enc.List(len(options.Flags), func(i int) {
			cmd.enc.Flag(options.Flags[i])
		}).SP()
	}
	if options != nil && !options.Time.IsZero() {
		cmd.enc.String(options.Time.Format(internal.DateTimeLayout)).SP()
	}
	return cmd.enc.Literal(size)
}

// Close ends the command (the CRLF after the last message) and sends it.
func (cmd *MultiAppendCommand) Close() error {
	if cmd.enc != nil {
		cmd.enc.end()
		cmd.enc = nil
	}
	return nil
}

// Wait blocks until the server answers the whole command.
func (cmd *MultiAppendCommand) Wait() error {
	return cmd.wait()
}
