package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/etcdv2/client"
	"github.com/urfave/cli"
	"golang.org/x/term"
)

// record is one line of an export: a key or a directory.
type record struct {
	Key           string     `json:"key"`
	Dir           bool       `json:"dir,omitempty"`
	Value         string     `json:"value,omitempty"`
	TTL           int64      `json:"ttl,omitempty"`
	Expiration    *time.Time `json:"expiration,omitempty"`
	CreatedIndex  uint64     `json:"createdIndex,omitempty"`
	ModifiedIndex uint64     `json:"modifiedIndex,omitempty"`
}

// progress prints a one-line counter on standard error when it is a
// terminal, at most five times a second; otherwise it prints nothing. With
// a total (see set) the line is a bar.
type progress struct {
	mu    sync.Mutex
	on    bool
	w     io.Writer
	verb  string
	start time.Time
	last  time.Time
	n     int
	total int
}

func (t *tool) newProgress(verb string) *progress {
	on := false
	if f, ok := t.stderr.(*os.File); ok {
		on = term.IsTerminal(int(f.Fd()))
	}
	return &progress{on: on, w: t.stderr, verb: verb, start: time.Now()}
}

// add counts n more records.
func (p *progress) add(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n += n
	if !p.on || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.draw()
}

// set makes the count n of total (0: not known) under verb; a new verb
// ends the line of the previous one and starts a new line.
func (p *progress) set(verb string, n, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if verb != p.verb {
		if p.on && !p.last.IsZero() {
			p.draw()
			fmt.Fprintln(p.w)
		}
		p.verb, p.start, p.last = verb, time.Now(), time.Time{}
	}
	p.n, p.total = n, total
	if !p.on || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.draw()
}

// barWidth is the number of cells of a progress bar.
const barWidth = 30

func (p *progress) draw() {
	el := time.Since(p.start)
	rate := float64(p.n) / el.Seconds()
	if p.total > 0 {
		full := min(p.n*barWidth/p.total, barWidth)
		bar := strings.Repeat("=", full) + strings.Repeat(" ", barWidth-full)
		fmt.Fprintf(p.w, "\r%s [%s] %d/%d records in %s (%.0f/s)   ", p.verb, bar, p.n, p.total, el.Round(time.Second), rate)
		return
	}
	fmt.Fprintf(p.w, "\r%s %d records in %s (%.0f/s)   ", p.verb, p.n, el.Round(time.Second), rate)
}

// done ends the progress line.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.on {
		p.draw()
		fmt.Fprintln(p.w)
	}
}

func (t *tool) exportCommand() cli.Command {
	return cli.Command{
		Name:      "export",
		Usage:     "write keys and directories under prefixes to standard output as JSON lines",
		ArgsUsage: "<prefix> [<prefix>...]",
		Description: `Export walks each prefix one directory at a time (a non-recursive,
   sorted listing per directory, so memory is bounded by the largest single
   directory, not by the tree) and writes one JSON object per line for every
   directory and key: key, dir, value, ttl (seconds left), expiration,
   createdIndex, modifiedIndex. Directories come before their contents.

   The v2 API never lists hidden nodes (names starting with "_"); give a
   hidden key or directory as a prefix of its own to export it. Each
   directory is read at its own index: the export is not a point-in-time
   snapshot of a tree that changes meanwhile. On a terminal, a progress line
   is shown on standard error.

   Example:
   $ etcdv2ctl export /config /config/_meta > config.jsonl`,
		Flags: []cli.Flag{
			cli.BoolFlag{Name: "quorum, q", Usage: "read each directory with a quorum read"},
		},
		Action: t.export,
	}
}

func (t *tool) export(c *cli.Context) error {
	ki := t.keysAPI(c)
	if len(c.Args()) == 0 {
		t.handleError(c, exitBadArgs, errors.New("prefix required"))
	}
	p := t.newProgress("exported")
	enc := json.NewEncoder(t.stdout)
	enc.SetEscapeHTML(false)
	quorum := c.Bool("quorum")
	for _, prefix := range c.Args() {
		if err := t.walk(c, ki, prefix, quorum, enc, p, true); err != nil {
			p.done()
			t.handleError(c, exitServerError, err)
		}
	}
	p.done()
	return nil
}

// walk exports key: one listing, then each subdirectory in turn.
func (t *tool) walk(c *cli.Context, ki client.KeysAPI, key string, quorum bool, enc *json.Encoder, p *progress, top bool) error {
	ctx, cancel := t.totalTimeout(c)
	resp, err := ki.Get(ctx, key, &client.GetOptions{Sort: true, Quorum: quorum})
	cancel()
	if err != nil {
		if !top && client.IsKeyNotFound(err) {
			return nil // deleted since its parent was listed
		}
		return err
	}
	n := resp.Node
	if n.Key != "" && n.Key != "/" {
		if err := enc.Encode(toRecord(n)); err != nil {
			return err
		}
		p.add(1)
	}
	if !n.Dir {
		return nil
	}
	for _, child := range n.Nodes {
		if child.Dir {
			if err := t.walk(c, ki, child.Key, quorum, enc, p, false); err != nil {
				return err
			}
			continue
		}
		if err := enc.Encode(toRecord(child)); err != nil {
			return err
		}
		p.add(1)
	}
	return nil
}

func toRecord(n *client.Node) record {
	return record{Key: n.Key, Dir: n.Dir, Value: n.Value, TTL: n.TTL, Expiration: n.Expiration,
		CreatedIndex: n.CreatedIndex, ModifiedIndex: n.ModifiedIndex}
}

func (t *tool) importCommand() cli.Command {
	return cli.Command{
		Name:      "import",
		Usage:     "write the keys and directories of an export (JSON lines on standard input)",
		ArgsUsage: " ",
		Description: `Import reads an export from standard input, one record at a time, and
   writes each: a directory with its TTL (a directory that exists is kept
   as it is, TTL included), a key with its
   value and TTL (unconditionally). TTLs start again at import time, with
   the seconds that were left at export time.

   For every record written, one line "LINE KEY" goes to standard output
   (LINE is the record's line number in the input), so the output says
   exactly which keys were written. Keys are written --concurrency at a time;
   directories one by one before what follows them. If a write fails, import
   stops, prints the error and the first line not known to be written, and
   exits with status 4; run it again with --from-line that line to resume
   (writing a key again is harmless: it sets the same value). On a terminal,
   a progress line is shown on standard error.

   Example:
   $ etcdv2ctl import < config.jsonl > written.txt
   $ etcdv2ctl import --from-line 52001 < config.jsonl >> written.txt`,
		Flags: []cli.Flag{
			cli.IntFlag{Name: "from-line", Value: 1, Usage: "skip the records before this line of the input"},
			cli.IntFlag{Name: "concurrency", Value: 8, Usage: "keys written at a time"},
		},
		Action: t.importRecords,
	}
}

// lineTracker finds the first line not yet written, with writes finishing
// out of order.
type lineTracker struct {
	mu   sync.Mutex
	next int          // every line before next is written (or skipped)
	done map[int]bool // written lines at or after next
}

func (lt *lineTracker) finish(line int) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	lt.done[line] = true
	for lt.done[lt.next] {
		delete(lt.done, lt.next)
		lt.next++
	}
}

// skip marks a line without a record (blank) as done.
func (lt *lineTracker) skip(line int) { lt.finish(line) }

func (t *tool) importRecords(c *cli.Context) error {
	ki := t.keysAPI(c)
	from := c.Int("from-line")
	if from < 1 {
		from = 1
	}
	conc := c.Int("concurrency")
	if conc < 1 {
		conc = 1
	}
	p := t.newProgress("imported")
	lt := &lineTracker{next: from, done: map[int]bool{}}
	var (
		outMu    sync.Mutex
		errMu    sync.Mutex
		firstErr error
		errLine  int
		wg       sync.WaitGroup
	)
	sem := make(chan struct{}, conc)
	failed := func() bool {
		errMu.Lock()
		defer errMu.Unlock()
		return firstErr != nil
	}
	fail := func(line int, key string, err error) {
		errMu.Lock()
		defer errMu.Unlock()
		if firstErr == nil || line < errLine {
			firstErr, errLine = fmt.Errorf("line %d (%s): %w", line, key, compat(err)), line
		}
	}
	written := func(line int, key string) {
		outMu.Lock()
		t.printf("%d %s\n", line, key)
		outMu.Unlock()
		lt.finish(line)
		p.add(1)
	}
	write := func(line int, r record) {
		ctx, cancel := t.totalTimeout(c)
		defer cancel()
		ttl := time.Duration(r.TTL) * time.Second
		var err error
		if r.Dir {
			_, err = ki.Set(ctx, r.Key, "", &client.SetOptions{Dir: true, TTL: ttl, PrevExist: client.PrevNoExist})
			if errors.Is(err, client.Error{Code: client.ErrorCodeNodeExist}) {
				// It exists: keep it as it is if it is a directory
				// (etcd 3.5 cannot change an existing directory's TTL:
				// it answers error 300).
				var resp *client.Response
				resp, err = ki.Get(ctx, r.Key, &client.GetOptions{Quorum: true})
				if err == nil && !resp.Node.Dir {
					err = errors.New("exists and is not a directory")
				}
			}
		} else {
			_, err = ki.Set(ctx, r.Key, r.Value, &client.SetOptions{TTL: ttl})
		}
		if err != nil {
			fail(line, r.Key, err)
			return
		}
		written(line, r.Key)
	}

	sc := bufio.NewScanner(t.stdin)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	line := 0
	for sc.Scan() && !failed() {
		line++
		if line < from {
			continue
		}
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			lt.skip(line)
			continue
		}
		var r record
		if err := json.Unmarshal([]byte(text), &r); err != nil || r.Key == "" {
			if err == nil {
				err = errors.New("record without a key")
			}
			fail(line, "?", err)
			break
		}
		if r.Dir {
			wg.Wait() // what came before is written first
			write(line, r)
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(line int, r record) {
			defer wg.Done()
			defer func() { <-sem }()
			write(line, r)
		}(line, r)
	}
	wg.Wait()
	p.done()
	if err := sc.Err(); err != nil && firstErr == nil {
		firstErr = fmt.Errorf("reading standard input: %w", err)
	}
	if firstErr != nil {
		lt.mu.Lock()
		next := lt.next
		lt.mu.Unlock()
		t.errorln("Error: ", firstErr)
		t.errorf("every record before line %d is written; resume with: import --from-line %d\n", next, next)
		t.exit(exitServerError)
	}
	return nil
}
