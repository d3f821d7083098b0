// The plain-http warning: shown wherever the server is named while `insecure` (Rust's
// judgement: http:// and not localhost, a private network or a .local name).

import { Show } from "solid-js";
import { useApp } from "../app/state";

export function InsecureWarning() {
  const app = useApp();
  return (
    <Show when={app.insecure()}>
      <p id="insecure-warning" class="insecure-warning" role="alert">
        <strong>Not secure:</strong> this server is reached over plain http, so your password and
        messages cross the network unencrypted and others on it can read them. Ask the server's
        operator for an https:// address.
      </p>
    </Show>
  );
}
