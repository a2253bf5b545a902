package client

import (
	"context"
	"time"
)

// Sync implements Client.
func (c *httpClusterClient) Sync(ctx context.Context) error {
	var v struct {
		Members []struct {
			ClientURLs []string `json:"clientURLs"`
		} `json:"members"`
	}
	if err := c.getJSON(ctx, "/v2/members", &v); err != nil {
		return err
	}
	var eps []string
	for _, m := range v.Members {
		eps = append(eps, m.ClientURLs...)
	}
	list, err := parseEndpoints(eps)
	if err != nil {
		// No member advertises a usable client URL: keep what works.
		return err
	}
	c.setMu.Lock()
	old := c.eps.Load()
	if sameEndpoints(old.list, list) {
		c.setMu.Unlock()
	} else {
		shuffle(list)
		c.storeLocked(list, old.leader)
		c.setMu.Unlock()
	}
	if c.wantLeader {
		return c.refreshLeader(ctx)
	}
	return nil
}

func sameEndpoints(a, b []*endpoint) bool {
	if len(a) != len(b) {
		return false
	}
	in := make(map[string]bool, len(a))
	for _, e := range a {
		in[e.raw] = true
	}
	for _, e := range b {
		if !in[e.raw] {
			return false
		}
	}
	return true
}

// AutoSync implements Client.
func (c *httpClusterClient) AutoSync(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = time.Second
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		err := c.Sync(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if c.closed.Load() {
			return context.Canceled
		}
		if err != nil && c.logger != nil {
			c.logger.WarnContext(ctx, "etcd client: membership sync failed; endpoints kept", "error", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.closeCtx.Done():
			return context.Canceled
		case <-ticker.C:
		}
	}
}

// GetVersion implements Client.
func (c *httpClusterClient) GetVersion(ctx context.Context) (*Versions, error) {
	var v Versions
	if err := c.getJSON(ctx, "/version", &v); err != nil {
		return nil, err
	}
	return &v, nil
}
