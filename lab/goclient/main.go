// labclient: a Go client that resolves and dials the way client-go (kubelet, kube-proxy, kubectl)
// does, for the apidns lab when no kubectl binary is at hand. Go's own resolver (this is built
// with CGO_ENABLED=0, like kubectl), addresses sorted per RFC 6724 and tried one after another by
// a net.Dialer with client-go's 30 s timeout, TLS verified against the lab CA.
//
//	labclient [-cacert FILE] [-timeout 20s] URL    GET URL, print the body
//	labclient -every 1s [-count N] URL              GET URL again and again on one client, as a
//	                                                long-running process does: one line per request
//	                                                with the server, and whether the connection was
//	                                                new (resolved and dialled) or reused
//	labclient -lookup NAME                          print NAME's addresses in the order Go dials them
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"time"
)

func main() {
	caFile := flag.String("cacert", "/lab/pki/ca.pem", "PEM file of the CA to trust")
	timeout := flag.Duration("timeout", 20*time.Second, "whole request (like kubectl --request-timeout)")
	lookup := flag.Bool("lookup", false, "only resolve the name given and print its addresses")
	every := flag.Duration("every", 0, "repeat the request at this interval on one client")
	count := flag.Int("count", 0, "with -every: stop after this many requests (0: never)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: labclient [-cacert FILE] [-timeout D] URL | labclient -lookup NAME")
		os.Exit(2)
	}

	if *lookup {
		addrs, err := net.DefaultResolver.LookupIPAddr(context.Background(), flag.Arg(0))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, addr := range addrs {
			fmt.Println(addr.IP)
		}
		return
	}

	pem, err := os.ReadFile(*caFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		fmt.Fprintf(os.Stderr, "%s: no certificate\n", *caFile)
		os.Exit(1)
	}
	// client-go's transport: net.Dialer{Timeout: 30s, KeepAlive: 30s}, TLS handshake timeout 10s.
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	client := &http.Client{
		Timeout: *timeout,
		Transport: &http.Transport{
			DialContext:         dialer.DialContext,
			TLSClientConfig:     &tls.Config{RootCAs: roots},
			TLSHandshakeTimeout: 10 * time.Second,
			ForceAttemptHTTP2:   true,
		},
	}
	if *every > 0 {
		repeat(client, flag.Arg(0), *every, *count)
		return
	}
	response, err := client.Get(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer response.Body.Close()
	body, _ := io.ReadAll(response.Body)
	os.Stdout.Write(body)
	if response.StatusCode != http.StatusOK {
		fmt.Fprintf(os.Stderr, "HTTP %s\n", response.Status)
		os.Exit(1)
	}
}

// repeat sends GET url every interval on one client and prints a line per request: the time since
// the start, how long it took, the server's address, and whether its connection was reused.
func repeat(client *http.Client, url string, interval time.Duration, count int) {
	start := time.Now()
	for i := 0; count == 0 || i < count; i++ {
		var remote string
		reused := false
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
			remote = info.Conn.RemoteAddr().String()
			reused = info.Reused
		}}
		begin := time.Now()
		request, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", url, nil)
		response, err := client.Do(request)
		at := begin.Sub(start).Seconds()
		took := time.Since(begin).Seconds()
		if err != nil {
			fmt.Printf("%7.1fs  %6.2fs  error: %v\n", at, took, err)
		} else {
			io.Copy(io.Discard, response.Body)
			response.Body.Close()
			connection := "new connection"
			if reused {
				connection = "reused connection"
			}
			fmt.Printf("%7.1fs  %6.2fs  %s  %s  %s\n", at, took, response.Status, remote, connection)
		}
		time.Sleep(interval)
	}
}
