// Server screen: where the Confab server is. Rust normalizes and checks the URL.

import { api } from "../api";
import { useApp } from "../app/state";
import { describeError } from "../errors";
import { createForm, Field } from "../forms";
import { InsecureWarning } from "./insecure";

export const DEFAULT_SERVER = "http://127.0.0.1:8080";

export function ServerScreen(props: { current?: string | null }) {
  const app = useApp();
  const form = createForm("server-form", { url: { id: "server-url", label: "Server address" } });
  const onSubmit = async (e: SubmitEvent) => {
    e.preventDefault();
    const value = form.value("url").trim();
    if (value === "") {
      form.show({ url: "Enter the server address" });
      return;
    }
    await form.run(
      async () => {
        const picked = await api.setServer(value);
        app.setServerUrl(picked.url, picked.pictureBase);
        app.setInsecure(picked.insecure);
        app.go({ name: "auth", tab: props.current ? "login" : "signup" });
      },
      (err) => form.show({ url: describeError(err) }),
    );
  };
  return (
    <section id="server-screen" class="screen centered">
      <h1 tabIndex={-1}>Connect to a server</h1>
      <form id="server-form" class="card stack" novalidate onSubmit={onSubmit}>
        <InsecureWarning />
        <Field
          form={form}
          name="url"
          hint="The address of your team's Confab server."
          type="url"
          value={props.current ?? DEFAULT_SERVER}
          autocomplete="url"
          spellcheck={false}
          required
        />
        <button id="server-continue" type="submit" class="primary" disabled={form.busy()}>
          Continue
        </button>
      </form>
    </section>
  );
}
