package client

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestEndpointWithUserinfoRefusedWithoutTheSecret(t *testing.T) {
	for _, ep := range []string{
		"http://root:s3cret-pw@127.0.0.1:2379",
		"https://s3cret-pw@etcd.example:2379/",
		"http://root:s3cret-pw@127.0.0.1:2379/%zz",
		"http://root:s3cret-pw@[::1",
		"root:s3cret-pw@127.0.0.1:2379",
		"s3cret-pw@127.0.0.1:2379",
		"http://root:s3cret%zq@127.0.0.1:2379",
		"http://root:s3cret@pw@127.0.0.1:2379",
		"//root:s3cret-pw@127.0.0.1:2379",
		"http:/root:s3cret-pw@127.0.0.1:2379",
		"http:///root:s3cret-pw@127.0.0.1:2379",
	} {
		_, err := New(Config{Endpoints: []string{ep}})
		assert.True(t, errors.Is(err, ErrInvalidEndpoint), "%s: %v", ep, err)
		assert.NotContains(t, err.Error(), "s3cret", ep)
		assert.NotContains(t, err.Error(), "%zq", ep)
		assert.NotContains(t, err.Error(), "pw", ep)
		assert.Contains(t, err.Error(), "[redacted]@", ep)
		c, err := New(Config{Endpoints: []string{"http://127.0.0.1:2379"}})
		assert.NoError(t, err)
		err = c.SetEndpoints([]string{ep})
		assert.True(t, errors.Is(err, ErrInvalidEndpoint) && !strings.Contains(err.Error(), "s3cret"), "%s: %v", ep, err)
		c.Close()
	}
	assert.Equal(t, "http://127.0.0.1:1/a@b", redactUserinfo("http://127.0.0.1:1/a@b"))
	assert.Equal(t, "127.0.0.1:1", redactUserinfo("127.0.0.1:1"))
	assert.Equal(t, "http:/127.0.0.1:1/a@b", redactUserinfo("http:/127.0.0.1:1/a@b"))
}
