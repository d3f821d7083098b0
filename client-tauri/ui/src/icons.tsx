// Small line icons drawn as SVG in the page, in the text's colour (`currentColor`), for the
// places that used emoji: a system without an emoji font (a bare Debian desktop has none)
// drew those as empty boxes. Decorative: the element they sit in carries the label.
import type { JSX } from "solid-js";

function Icon(props: { children: JSX.Element; class?: string }): JSX.Element {
  return (
    <svg
      class={`icon${props.class ? ` ${props.class}` : ""}`}
      viewBox="0 0 16 16"
      width="16"
      height="16"
      fill="none"
      stroke="currentColor"
      stroke-width="1.5"
      stroke-linecap="round"
      stroke-linejoin="round"
      aria-hidden="true"
    >
      {props.children}
    </svg>
  );
}

/** Attach a file. */
export function PaperclipIcon(): JSX.Element {
  return (
    <Icon>
      <path d="M10.5 4.5 5.8 9.2a1.4 1.4 0 0 0 2 2l5-5a2.8 2.8 0 0 0-4-4l-5 5a4.2 4.2 0 0 0 6 6l4.2-4.2" />
    </Icon>
  );
}

/** A file that is not a picture. */
export function FileIcon(): JSX.Element {
  return (
    <Icon>
      <path d="M9 1.5H4a1 1 0 0 0-1 1v11a1 1 0 0 0 1 1h8a1 1 0 0 0 1-1V5.5z" />
      <path d="M9 1.5v4h4" />
    </Icon>
  );
}

/** An announcement channel. */
export function MegaphoneIcon(): JSX.Element {
  return (
    <Icon>
      <path d="M2 6.5v3h2.5L10 13V3L4.5 6.5z" />
      <path d="M12.5 5.5a3 3 0 0 1 0 5" />
    </Icon>
  );
}

/** Waiting (a message not yet confirmed). */
export function ClockIcon(): JSX.Element {
  return (
    <Icon>
      <circle cx="8" cy="8" r="6" />
      <path d="M8 4.5V8l2.5 1.5" />
    </Icon>
  );
}
