package pop3_test

import (
	"context"
	"io"
	"testing"

	"github.com/popfetch/popfetch/fetch/pop3"
	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
)

// BenchmarkRetrMany retrieves 1,000 × 4 KB messages from pop3test over loopback per iteration, with
// and without pipelining. Allocations per message stay constant whatever the message size.
func BenchmarkRetrMany(b *testing.B) {
	for _, pipelining := range []bool{true, false} {
		name := "pipelined"
		if !pipelining {
			name = "lock-step"
		}
		b.Run(name, func(b *testing.B) {
			msgs := manyMessages(1000, 4096)
			s := pop3test.NewServer(b, &pop3test.Options{NoPipelining: !pipelining, Messages: msgs})
			nums := make([]int, len(msgs))
			for i := range nums {
				nums[i] = i + 1
			}
			ctx := context.Background()
			c, err := pop3.Dial(ctx, s.Addr(), pop3.TLSNone, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if err := c.Auth(ctx, pop3.Credentials{Username: "alice", Secret: "secret", AllowPlaintext: true}); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(msgs) * 4096))
			b.ReportAllocs()
			for b.Loop() {
				err := c.RetrMany(ctx, nums, func(n int, body io.Reader, err error) error {
					if err != nil {
						return err
					}
					_, err = io.Copy(io.Discard, body)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRetrLarge retrieves one message of the given size, to show that memory does not grow with
// it (compare B/op across sizes).
func BenchmarkRetrLarge(b *testing.B) {
	for _, size := range []int{1 << 20, 16 << 20} {
		b.Run(sizeName(size), func(b *testing.B) {
			msgs := manyMessages(1, size)
			s := pop3test.NewServer(b, &pop3test.Options{Messages: msgs})
			ctx := context.Background()
			c, err := pop3.Dial(ctx, s.Addr(), pop3.TLSNone, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if err := c.Auth(ctx, pop3.Credentials{Username: "alice", Secret: "secret", AllowPlaintext: true}); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				r, err := c.Retr(ctx, 1)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func sizeName(n int) string {
	return map[int]string{1 << 20: "1MiB", 16 << 20: "16MiB"}[n]
}
