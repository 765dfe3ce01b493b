package exporterbench

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowscope/flowscope/internal/testnet"
)

const (
	requestBytes  = 1024
	responseBytes = 4096
)

// Serve answers every connection on ln with 4 KiB after reading 1 KiB, then waits for the
// client's FIN: the benchmark's server, also driven by bench/burst.
func Serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, responseBytes)
			if _, err := io.ReadFull(c, buf[:requestBytes]); err != nil {
				return
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, c)
		}()
	}
}

// loadResult is what a load run did.
type loadResult struct {
	done, failed, behind uint64
	elapsed              time.Duration
}

// runLoad opens rate connections a second for dur from namespace cli to to: connect, send
// requestBytes, read responseBytes, close. Connections the workers cannot start in time are
// counted as behind (the machine is saturated).
func runLoad(cli *testnet.Netns, to netip.AddrPort, rate int, dur time.Duration, workers int) loadResult {
	jobs := make(chan struct{}, workers*4)
	var res loadResult
	var done, failed, behind atomic.Uint64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = cli.Do(func() error {
				buf := make([]byte, responseBytes)
				for range jobs {
					if oneConn(to, buf) {
						done.Add(1)
					} else {
						failed.Add(1)
					}
				}
				return nil
			})
		}()
	}
	start := time.Now()
	const tick = 10 * time.Millisecond
	t := time.NewTicker(tick)
	sent := 0
	for now := range t.C {
		el := now.Sub(start)
		if el >= dur {
			break
		}
		due := int(float64(rate) * el.Seconds())
		for ; sent < due; sent++ {
			select {
			case jobs <- struct{}{}:
			default:
				behind.Add(1)
			}
		}
	}
	t.Stop()
	close(jobs)
	wg.Wait()
	res.elapsed = time.Since(start)
	res.done, res.failed, res.behind = done.Load(), failed.Load(), behind.Load()
	return res
}

func oneConn(to netip.AddrPort, buf []byte) bool {
	c, err := net.DialTimeout("tcp", to.String(), 5*time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	if _, err := c.Write(buf[:requestBytes]); err != nil {
		return false
	}
	_, err = io.ReadFull(c, buf[:responseBytes])
	return err == nil
}
