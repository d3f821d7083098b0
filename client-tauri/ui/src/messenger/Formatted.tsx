// Renders a parsed message as DOM nodes: <strong>, <em>, <code>, <pre>, <a> and text
// nodes. User text only ever becomes text nodes (Solid inserts strings as text), so
// markup in a message is shown, never run.

import { For, Match, Switch } from "solid-js";
import { openLink } from "../platform";
import { type Block, type Inline, parseMessage } from "./format";

function Nodes(props: { nodes: Inline[]; mentionClass?: (name: string) => string }) {
  return (
    <For each={props.nodes}>
      {(n) => (
        <Switch>
          <Match when={n.t === "text" && n}>{(x) => x().s}</Match>
          <Match when={n.t === "code" && n}>{(x) => <code>{x().s}</code>}</Match>
          <Match when={n.t === "b" && n}>
            {(x) => (
              <strong>
                <Nodes nodes={x().c} mentionClass={props.mentionClass} />
              </strong>
            )}
          </Match>
          <Match when={n.t === "i" && n}>
            {(x) => (
              <em>
                <Nodes nodes={x().c} mentionClass={props.mentionClass} />
              </em>
            )}
          </Match>
          <Match when={n.t === "link" && n}>
            {(x) => (
              <a
                href={x().href}
                rel="noopener noreferrer"
                title={x().href}
                onClick={(e) => {
                  e.preventDefault();
                  void openLink(x().href);
                }}
              >
                {x().s}
              </a>
            )}
          </Match>
          <Match when={n.t === "mention" && n}>
            {(x) => <span class={props.mentionClass?.(x().name) ?? "mention"}>@{x().name}</span>}
          </Match>
        </Switch>
      )}
    </For>
  );
}

export function Formatted(props: { body: string; me?: string }) {
  const blocks = (): Block[] => parseMessage(props.body);
  const mentionClass = (name: string) => (name === props.me ? "mention mention-me" : "mention");
  return (
    <For each={blocks()}>
      {(b) =>
        b.t === "pre" ? (
          <pre class="code-block">
            <code>{b.s}</code>
          </pre>
        ) : (
          <p class="message-para">
            <Nodes nodes={b.c} mentionClass={mentionClass} />
          </p>
        )
      }
    </For>
  );
}
