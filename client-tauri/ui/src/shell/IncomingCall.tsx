// The incoming-call overlay: who calls, a ring tone (WebAudio), accept with video, accept
// audio-only, decline. It goes away when the ring stops (answered on another device,
// cancelled, missed).

import { onCleanup, onMount } from "solid-js";
import { Avatar } from "../avatar/Avatar";
import type { RingView } from "../messenger/types";
import { trapTab } from "./focus";

/** A two-tone ring, on for a second, off for two, until stopped. Silent without WebAudio. */
export function startRingTone(): () => void {
  const Ctx =
    typeof window !== "undefined"
      ? (window.AudioContext ??
        (window as unknown as { webkitAudioContext?: typeof AudioContext }).webkitAudioContext)
      : undefined;
  if (!Ctx) return () => {};
  let ctx: AudioContext;
  try {
    ctx = new Ctx();
  } catch {
    return () => {};
  }
  const gain = ctx.createGain();
  gain.gain.value = 0;
  gain.connect(ctx.destination);
  const tones = [440, 480].map((f) => {
    const o = ctx.createOscillator();
    o.frequency.value = f;
    o.connect(gain);
    o.start();
    return o;
  });
  const schedule = () => {
    const t = ctx.currentTime;
    for (let i = 0; i < 10; i++) {
      gain.gain.setValueAtTime(0.12, t + i * 3);
      gain.gain.setValueAtTime(0, t + i * 3 + 1);
    }
  };
  schedule();
  const timer = setInterval(schedule, 30_000);
  return () => {
    clearInterval(timer);
    for (const o of tones) o.stop();
    void ctx.close();
  };
}

export function IncomingCall(props: {
  ring: RingView;
  onAccept(video: boolean): void;
  onDecline(): void;
}) {
  let accept!: HTMLButtonElement;
  onMount(() => {
    accept.focus();
    const stop = startRingTone();
    onCleanup(stop);
  });
  return (
    <div class="overlay incoming">
      <div
        class="dialog incoming-call"
        role="alertdialog"
        aria-modal="true"
        aria-labelledby="caller-name"
        aria-describedby="incoming-what"
        data-testid="incoming-call"
        data-room-id={props.ring.roomId}
        onKeyDown={(e) => {
          if (e.key === "Escape") props.onDecline();
          trapTab(e, e.currentTarget);
        }}
      >
        <Avatar size="big" name={props.ring.from.name} url={props.ring.from.avatarUrl} />
        <h2 id="caller-name" data-testid="caller-name">
          {props.ring.from.name}
        </h2>
        <p id="incoming-what">{props.ring.video ? "Incoming video call" : "Incoming audio call"}</p>
        <div class="row">
          <button
            ref={accept}
            type="button"
            class="primary"
            data-testid="accept-video"
            onClick={() => props.onAccept(true)}
          >
            Accept with video
          </button>
          <button type="button" data-testid="accept-audio" onClick={() => props.onAccept(false)}>
            Accept audio only
          </button>
          <button
            type="button"
            class="danger"
            data-testid="decline-call"
            onClick={() => props.onDecline()}
          >
            Decline
          </button>
        </div>
      </div>
    </div>
  );
}
