// The call bar, shown while a call runs and the call view is not: which room, mute and
// camera, back to the call, hang up; with a small floating tile of the first other person.

import { Show } from "solid-js";
import { Tile } from "../call/CallView";
import type { CallSession } from "../call/session";

export function CallBar(props: { session: CallSession; onReturn(): void }) {
  const other = () => props.session.participants().find((p) => !p.local);
  return (
    <>
      <section
        class="call-bar"
        aria-label="Call in progress"
        data-testid="call-bar"
        data-room-id={props.session.room.id}
      >
        <span class="call-bar-title">
          In a call: <strong>{props.session.room.title}</strong> (
          {props.session.participants().length})
        </span>
        <button
          type="button"
          class="toggle"
          aria-pressed={props.session.muted() ? "true" : "false"}
          onClick={() => void props.session.toggleMute()}
        >
          Mute
        </button>
        <button
          type="button"
          class="toggle"
          aria-pressed={props.session.cameraOff() ? "true" : "false"}
          onClick={() => void props.session.toggleCamera()}
        >
          Stop camera
        </button>
        <button
          type="button"
          class="primary"
          data-testid="call-return"
          onClick={() => props.onReturn()}
        >
          Return to call
        </button>
        <button
          type="button"
          class="danger"
          data-testid="hang-up"
          onClick={() => void props.session.leave()}
        >
          Hang up
        </button>
      </section>
      <Show when={other()}>
        {(p) => (
          <div class="floating-tile">
            <ul class="tiles mini-tiles" aria-label="Call video">
              <Tile session={props.session} id={p().id} class="mini" />
            </ul>
            <button
              type="button"
              class="floating-return"
              aria-label={`Return to the call with ${p().username}`}
              onClick={() => props.onReturn()}
            />
          </div>
        )}
      </Show>
    </>
  );
}
