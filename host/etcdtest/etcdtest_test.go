package etcdtest

import (
	"net/http"
	"testing"
)

func TestStartKillRestart(t *testing.T) {
	s := Start(t)
	healthy := func() bool {
		resp, err := http.Get("http://" + s.Endpoint() + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	if !healthy() {
		t.Fatal("not healthy after Start")
	}
	s.Kill()
	if healthy() {
		t.Fatal("healthy after Kill")
	}
	s.Restart()
	if !healthy() {
		t.Fatal("not healthy after Restart")
	}
}
