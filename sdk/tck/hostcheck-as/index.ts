// hostcheck in AssemblyScript: the conformance kit's guest (sdk/tck),
// written with the AssemblyScript SDK (sdk/assemblyscript). It implements
// the specification of sdk/tck/hostcheck's package documentation (doc.go):
// the same config keys, checks, report keys and log lines as the Go guest,
// so that the unchanged runner, tck.Run(t, tck.ASGuest(module), start),
// drives it. It is a test guest, not a plugin to deploy. See README.md.
//
// This entry file's top level runs in the reactor's _initialize
// (asconfig.json: exportStart), before on_init: it probes the host there,
// as the Go guest does in its package initialisation, then registers the
// plugin.

import { Action, Plugin, Request, Response, register } from "../../assemblyscript/assembly";
import { onInit, onRequest, onResponse, probeInitialize, state } from "./checks";

// wasmgate_abi_v1, on_init, on_request; and on_response.
export * from "../../assemblyscript/assembly/exports";
export * from "../../assemblyscript/assembly/response";

class Hostcheck extends Plugin {
  init(config: string): string | null {
    return onInit(config);
  }

  onRequest(req: Request): Action {
    return onRequest(req);
  }

  onResponse(resp: Response): Action {
    return onResponse(resp);
  }
}

state.initializeProbe = probeInitialize();
register(new Hostcheck());
