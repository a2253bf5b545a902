package v2fake

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

type member struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
}

// AddMember adds a started member to the cluster the server reports, with
// the given ID, name and URLs.
func (s *Server) AddMember(id, name string, peerURLs, clientURLs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.members = append(s.members, &member{ID: id, Name: name, PeerURLs: peerURLs, ClientURLs: clientURLs})
}

func (s *Server) membersAPI(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, "GET", "POST", "DELETE", "PUT") {
		return
	}
	if !s.writeRootAccess(r) {
		httpError(w, http.StatusUnauthorized, "Insufficient credentials")
		return
	}
	s.setClusterHeader(w)
	sub := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/v2/members"), "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.Method {
	case "GET":
		switch sub {
		case "":
			w.Header().Set("Content-Type", "application/json")
			ms := make([]member, 0, len(s.members))
			for _, m := range s.members {
				ms = append(ms, m.external())
			}
			json.NewEncoder(w).Encode(struct {
				Members []member `json:"members"`
			}{ms})
		case "leader":
			m := s.member(s.leader)
			if m == nil {
				httpError(w, http.StatusServiceUnavailable, "During election")
				return
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(m.external())
		default:
			httpError(w, http.StatusNotFound, "Not found")
		}
	case "POST":
		var req struct {
			PeerURLs []string `json:"peerURLs"`
		}
		if !decodeMemberRequest(w, r, &req) {
			return
		}
		for _, u := range req.PeerURLs {
			if s.peerURLUsed(u, "") {
				httpError(w, http.StatusConflict, "membership: peerURL exists")
				return
			}
		}
		id := fmt.Sprintf("%x", uint64(0x91bc3c398fb3c146)+uint64(len(s.members)))
		m := &member{ID: id, PeerURLs: req.PeerURLs}
		s.members = append(s.members, m)
		s.store.index++ // etcd records members in its v2 store too
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(m.external())
	case "DELETE":
		id, ok := memberID(w, sub)
		if !ok {
			return
		}
		for i, m := range s.members {
			if m.ID == id {
				s.members = append(s.members[:i:i], s.members[i+1:]...)
				s.store.index += 2 // the member's record goes, a removal record comes
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		httpError(w, http.StatusNotFound, "No such member: "+id)
	case "PUT":
		id, ok := memberID(w, sub)
		if !ok {
			return
		}
		var req struct {
			PeerURLs []string `json:"peerURLs"`
		}
		if !decodeMemberRequest(w, r, &req) {
			return
		}
		m := s.member(id)
		if m == nil {
			httpError(w, http.StatusNotFound, "No such member: "+id)
			return
		}
		for _, u := range req.PeerURLs {
			if s.peerURLUsed(u, id) {
				httpError(w, http.StatusConflict, "membership: peerURL exists")
				return
			}
		}
		m.PeerURLs = req.PeerURLs
		s.store.index++
		w.WriteHeader(http.StatusNoContent)
	}
}

func (m *member) external() member {
	out := *m
	if out.PeerURLs == nil {
		out.PeerURLs = []string{}
	}
	if out.ClientURLs == nil {
		out.ClientURLs = []string{}
	}
	return out
}

func (s *Server) member(id string) *member {
	for _, m := range s.members {
		if m.ID == id {
			return m
		}
	}
	return nil
}

func (s *Server) peerURLUsed(u, except string) bool {
	for _, m := range s.members {
		if m.ID == except {
			continue
		}
		for _, p := range m.PeerURLs {
			if p == u {
				return true
			}
		}
	}
	return false
}

// memberID reads a member ID as etcd does (hexadecimal, not zero).
func memberID(w http.ResponseWriter, sub string) (string, bool) {
	if sub == "" {
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return "", false
	}
	id, err := strconv.ParseUint(sub, 16, 64)
	if err != nil {
		httpError(w, http.StatusNotFound, "No such member: "+sub)
		return "", false
	}
	return fmt.Sprintf("%x", id), true
}

// decodeMemberRequest reads a members request body as etcd does.
func decodeMemberRequest(w http.ResponseWriter, r *http.Request, req *struct {
	PeerURLs []string `json:"peerURLs"`
}) bool {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/json" {
		httpError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Bad Content-Type %s, accept application/json", ct))
		return false
	}
	if err := json.NewDecoder(r.Body).Decode(req); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return false
	}
	for _, u := range req.PeerURLs {
		if _, err := url.Parse(u); err != nil {
			httpError(w, http.StatusBadRequest, err.Error())
			return false
		}
	}
	return true
}
