// Command burst drives a burst of short TCP connections over loopback (the exporter
// benchmark's server; each connection sends 1 KiB, receives 4 KiB and closes), to see what a burst leaves behind
// in a running `flowscope standalone` or exporter:
//
//	go run ./bench/burst -n 60000 -workers 32
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/flowscope/flowscope/internal/exporterbench"
)

func main() {
	n := flag.Int("n", 60000, "connections")
	workers := flag.Int("workers", 32, "concurrent clients")
	flag.Parse()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go exporterbench.Serve(ln)
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	for range *workers {
		wg.Go(func() {
			for range *n / *workers {
				if err := exchange(ln.Addr().String()); err != nil {
					mu.Lock()
					failed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	fmt.Printf("%d connections in %v (%.0f/s), %d failed\n", *n / *workers * *workers, d.Round(time.Millisecond), float64(*n)/d.Seconds(), failed)
}

func exchange(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write(make([]byte, 1024)); err != nil {
		return err
	}
	_, err = io.ReadFull(c, make([]byte, 4096))
	return err // then the client closes first, as the server waits for
}
