package traffic_test

import (
	"encoding/json"
	"fmt"

	"github.com/wasmgate/wasmgate/host/traffic"
)

func ExampleSplit() {
	canary, err := traffic.NewSplit([]traffic.Arm{{Name: "users-v1", Weight: 90}, {Name: "users-v2", Weight: 10}})
	if err != nil {
		fmt.Println(err)
		return
	}
	arms := canary.Arms()
	for _, user := range []string{"alice", "bob"} {
		fmt.Println(user, "->", arms[canary.Pick(traffic.HashString(user))].Name)
	}
	// Output:
	// alice -> users-v2
	// bob -> users-v1
}

func ExampleStore() {
	store, err := traffic.NewStore(traffic.Options{}) // StatePath: persist
	if err != nil {
		fmt.Println(err)
		return
	}
	flag := traffic.Key{Kind: "flag", Name: "new-checkout"}
	// At start and on every reload: the config file's values.
	store.SetFile(map[traffic.Key]json.RawMessage{flag: json.RawMessage(`{"enabled": false}`)}, "start", nil)
	// An operator turns the flag on at run time.
	store.Set(flag, json.RawMessage(`{"enabled": true, "percent": 10}`), "admin 10.0.0.7", nil)
	e, _ := store.View().Get(flag)
	fmt.Println(e.Source, string(e.Value), "file:", string(e.File))
	// One call undoes it.
	store.Rollback("admin 10.0.0.7", nil)
	e, _ = store.View().Get(flag)
	fmt.Println(e.Source, string(e.Value))
	for _, a := range store.Audit(0) {
		fmt.Println(a.Seq, a.Action, a.Kind+"/"+a.Name, string(a.After))
	}
	// Output:
	// runtime {"enabled":true,"percent":10} file: {"enabled":false}
	// file {"enabled":false}
	// 2 rollback flag/new-checkout {"enabled":false}
	// 1 set flag/new-checkout {"enabled":true,"percent":10}
}
