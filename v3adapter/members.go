package v3adapter

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/etcdv2/client"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

type membersAPI struct {
	cli     *clientv3.Client
	timeout time.Duration // per request; see WithRequestTimeout
}

// NewMembersAPI returns a client.MembersAPI over etcd's v3 cluster API.
// Member IDs are hexadecimal as in v2. Errors the server gives for a member
// are *client.MemberError with the status v2 would have used (404 unknown
// member, 409 peer URL or member exists, 412 when the cluster refuses the
// change as unsafe). Of the options it uses WithRequestTimeout (a
// membership change that runs out of that time fails with a
// *client.OutcomeUnknownError) and ignores WithPrefix.
func NewMembersAPI(cli *clientv3.Client, opts ...Option) client.MembersAPI {
	k := &keysAPI{}
	for _, o := range opts {
		o(k)
	}
	return &membersAPI{cli: cli, timeout: k.timeout}
}

// changeErr makes the timeout of a membership change, which may have been
// applied, a *client.OutcomeUnknownError.
func (m *membersAPI) changeErr(err error) error {
	if errors.Is(err, client.ErrAttemptTimeout) {
		return &client.OutcomeUnknownError{Endpoint: strings.Join(m.cli.Endpoints(), ","), Err: err}
	}
	return err
}

func hexID(id uint64) string { return strconv.FormatUint(id, 16) }

func memberErr(op, member string, err error) error {
	status := 0
	switch {
	case errors.Is(err, rpctypes.ErrGRPCMemberNotFound), errors.Is(err, rpctypes.ErrMemberNotFound):
		status = http.StatusNotFound
	case errors.Is(err, rpctypes.ErrGRPCPeerURLExist), errors.Is(err, rpctypes.ErrPeerURLExist),
		errors.Is(err, rpctypes.ErrGRPCMemberExist), errors.Is(err, rpctypes.ErrMemberExist):
		status = http.StatusConflict
	case errors.Is(err, rpctypes.ErrGRPCUnhealthy), errors.Is(err, rpctypes.ErrUnhealthy):
		status = http.StatusPreconditionFailed
	case errors.Is(err, rpctypes.ErrGRPCMemberBadURLs), errors.Is(err, rpctypes.ErrMemberBadURLs):
		status = http.StatusBadRequest
	}
	if status == 0 {
		return err
	}
	return &client.MemberError{Op: op, Member: member, StatusCode: status, Message: rpctypes.ErrorDesc(err)}
}

// List implements client.MembersAPI.
func (m *membersAPI) List(ctx context.Context) ([]client.Member, error) {
	r, err := call(ctx, m.timeout, func(ctx context.Context) (*clientv3.MemberListResponse, error) {
		return m.cli.MemberList(ctx)
	})
	if err != nil {
		return nil, memberErr("list", "", err)
	}
	out := make([]client.Member, 0, len(r.Members))
	for _, mm := range r.Members {
		out = append(out, client.Member{ID: hexID(mm.ID), Name: mm.Name, PeerURLs: mm.PeerURLs, ClientURLs: mm.ClientURLs})
	}
	return out, nil
}

// Add implements client.MembersAPI.
func (m *membersAPI) Add(ctx context.Context, peerURL string) (*client.Member, error) {
	r, err := call(ctx, m.timeout, func(ctx context.Context) (*clientv3.MemberAddResponse, error) {
		return m.cli.MemberAdd(ctx, []string{peerURL})
	})
	if err != nil {
		return nil, memberErr("add", peerURL, m.changeErr(err))
	}
	return &client.Member{ID: hexID(r.Member.ID), PeerURLs: r.Member.PeerURLs, ClientURLs: r.Member.ClientURLs}, nil
}

func parseID(op, id string) (uint64, error) {
	n, err := strconv.ParseUint(id, 16, 64)
	if err != nil {
		return 0, &client.MemberError{Op: op, Member: id, StatusCode: http.StatusNotFound, Message: "membership: member not found"}
	}
	return n, nil
}

// Remove implements client.MembersAPI.
func (m *membersAPI) Remove(ctx context.Context, mID string) error {
	id, err := parseID("remove", mID)
	if err != nil {
		return err
	}
	if _, err := call(ctx, m.timeout, func(ctx context.Context) (*clientv3.MemberRemoveResponse, error) {
		return m.cli.MemberRemove(ctx, id)
	}); err != nil {
		return memberErr("remove", mID, m.changeErr(err))
	}
	return nil
}

// Update implements client.MembersAPI.
func (m *membersAPI) Update(ctx context.Context, mID string, peerURLs []string) error {
	id, err := parseID("update", mID)
	if err != nil {
		return err
	}
	if _, err := call(ctx, m.timeout, func(ctx context.Context) (*clientv3.MemberUpdateResponse, error) {
		return m.cli.MemberUpdate(ctx, id, peerURLs)
	}); err != nil {
		return memberErr("update", mID, m.changeErr(err))
	}
	return nil
}

// leaderStatusTimeout bounds the status request to one endpoint in Leader,
// so that a hung member does not hold up the others.
const leaderStatusTimeout = 2 * time.Second

// Leader implements client.MembersAPI: it asks the endpoints of the v3
// client in turn (each for at most 2 seconds) for their status and returns
// the member the first one with a leader names.
func (m *membersAPI) Leader(ctx context.Context) (*client.Member, error) {
	var last error
	for _, ep := range m.cli.Endpoints() {
		sctx, cancel := context.WithTimeout(ctx, leaderStatusTimeout)
		st, err := call(sctx, m.timeout, func(ctx context.Context) (*clientv3.StatusResponse, error) {
			return m.cli.Status(ctx, ep)
		})
		cancel()
		if err != nil {
			last = err
			continue
		}
		if st.Leader == 0 {
			continue
		}
		// The v3 client spreads calls over its endpoints: a few bounded
		// attempts reach a live member even if one is hung.
		var ms []client.Member
		for attempt := 0; attempt <= len(m.cli.Endpoints()); attempt++ {
			lctx, cancel := context.WithTimeout(ctx, leaderStatusTimeout)
			ms, err = m.List(lctx)
			cancel()
			if err == nil || ctx.Err() != nil {
				break
			}
		}
		if err != nil {
			return nil, err
		}
		for i := range ms {
			if ms[i].ID == hexID(st.Leader) {
				return &ms[i], nil
			}
		}
	}
	if last == nil {
		last = client.ErrNoLeaderEndpoint
	}
	return nil, last
}
