// A virtualized, bottom-anchored list (the message list): only the rows in and near the
// viewport are in the DOM, between two spacers sized to the rows left out. Row heights are
// measured as rows render (ResizeObserver) and estimated until then. While the user is at
// the bottom it stays there as rows arrive; otherwise the first row in view keeps its
// place when rows are added above (older pages) or heights change.

import {
  type Accessor,
  batch,
  createEffect,
  createMemo,
  createSignal,
  For,
  type JSX,
  on,
  onCleanup,
  onMount,
} from "solid-js";
import { Layout } from "./virtual";

/** Rendered above and below the viewport, in pixels. */
export const OVERSCAN_PX = 600;
/** Viewport height assumed before the list is laid out (and in tests). */
export const FALLBACK_VIEWPORT_PX = 600;
const BOTTOM_SLACK_PX = 48;
/** Older rows are asked for this far from the top, so they are there before the user is. */
const NEAR_TOP_PX = 2000;

export interface VirtualListHandle {
  scrollToBottom(): void;
  /** Scrolls so that `key`'s row is at the top (with a little room above). */
  scrollToKey(key: string): boolean;
  atBottom(): boolean;
}

export function VirtualList<K extends string>(props: {
  keys: Accessor<readonly K[]>;
  estimate: (key: K) => number;
  children: (key: K) => JSX.Element;
  onNearTop?: () => void;
  onAtBottom?: (atBottom: boolean) => void;
  onRange?: (first: K | undefined, last: K | undefined) => void;
  handle?: (h: VirtualListHandle) => void;
  /** The list itself got the focus (Tab into it). */
  onFocusList?: (scroller: HTMLElement) => void;
  id?: string;
  class?: string;
  "aria-label"?: string;
  "data-testid"?: string;
}) {
  let scroller!: HTMLDivElement;
  let topSpacer!: HTMLLIElement;
  let bottomSpacer!: HTMLLIElement;
  const heights = new Map<string, number>();
  const [measured, setMeasured] = createSignal(0);
  const [scrollTop, setScrollTop] = createSignal(0);
  const [viewport, setViewport] = createSignal(FALLBACK_VIEWPORT_PX);
  // Stuck to the bottom, or keeping `anchor` (a row and its offset from the top of the
  // viewport) where it is. Position is derived from these and the layout, so a layout
  // change (older rows prepended, a row measured) renders the right rows at once instead
  // of first the rows at the old scroll offset and then, on the scroll event, the right ones.
  const [stick, setStick] = createSignal(true);
  let anchor: { key: string; delta: number } | null = null;

  const layout = createMemo(() => {
    measured();
    const keys = props.keys();
    return new Layout(keys, (k) => heights.get(k) ?? props.estimate(k as K));
  });
  const position = createMemo(() => {
    const l = layout();
    const st = scrollTop();
    if (stick()) return Math.max(0, l.total - viewport());
    if (anchor) {
      const i = l.keys.indexOf(anchor.key);
      if (i >= 0) return Math.max(0, l.top(i) - anchor.delta);
    }
    return st;
  });
  const range = createMemo(() => layout().range(position(), viewport(), OVERSCAN_PX));
  const visible = createMemo(
    () => {
      const [s, e] = range();
      return props.keys().slice(s, e);
    },
    [] as readonly K[],
    {
      equals: (a, b) => a.length === b.length && a.every((k, i) => k === b[i]),
    },
  );

  const remember = (st: number) => {
    const l = layout();
    const i = l.indexAt(st);
    const key = l.keys[i];
    anchor = key === undefined ? null : { key, delta: l.top(i) - st };
  };

  const place = () => {
    const l = layout();
    const [s, e] = range();
    topSpacer.style.setProperty("height", `${l.top(s)}px`);
    bottomSpacer.style.setProperty("height", `${Math.max(0, l.total - l.top(e))}px`);
    if (stick()) {
      // The browser clamps this to the bottom.
      scroller.scrollTop = l.total;
    } else {
      const want = position();
      if (Math.abs(scrollTop() - want) > 1) scroller.scrollTop = want;
    }
  };

  const onScroll = () => {
    const st = scroller.scrollTop;
    const atBottom = scroller.scrollHeight - st - scroller.clientHeight < BOTTOM_SLACK_PX;
    remember(st);
    batch(() => {
      setStick(atBottom);
      setScrollTop(st);
    });
    props.onAtBottom?.(atBottom);
    if (st < NEAR_TOP_PX) props.onNearTop?.();
  };

  const observer =
    typeof ResizeObserver === "undefined"
      ? null
      : new ResizeObserver((entries) => {
          let changed = false;
          for (const e of entries) {
            const key = (e.target as HTMLElement).dataset.rowKey;
            if (key === undefined) continue;
            const h = (e.target as HTMLElement).offsetHeight;
            if (h > 0 && heights.get(key) !== h) {
              heights.set(key, h);
              changed = true;
            }
          }
          if (changed) setMeasured((n) => n + 1);
        });
  onCleanup(() => observer?.disconnect());

  onMount(() => {
    // A scrolling region must be focusable for keyboard users to scroll it.
    scroller.tabIndex = 0;
    const onFocus = (e: FocusEvent) => {
      if (e.target === scroller) props.onFocusList?.(scroller);
    };
    scroller.addEventListener("focus", onFocus);
    onCleanup(() => scroller.removeEventListener("focus", onFocus));
    const measure = () => setViewport(scroller.clientHeight || FALLBACK_VIEWPORT_PX);
    measure();
    if (typeof ResizeObserver !== "undefined") {
      const ro = new ResizeObserver(measure);
      ro.observe(scroller);
      onCleanup(() => ro.disconnect());
    }
    // After every layout change: spacers, then stick to the bottom or keep the anchor.
    createEffect(on([layout, range], place));
    createEffect(on(visible, (keys) => props.onRange?.(keys[0], keys[keys.length - 1])));
    props.handle?.({
      scrollToBottom() {
        setStick(true);
        place();
      },
      scrollToKey(key) {
        const l = layout();
        const i = l.keys.indexOf(key);
        if (i < 0) return false;
        const y = Math.max(0, l.top(i) - 24);
        anchor = { key, delta: l.top(i) - y };
        batch(() => {
          setStick(false);
          setScrollTop(y);
        });
        scroller.scrollTop = y;
        props.onAtBottom?.(false);
        return true;
      },
      atBottom: () => stick(),
    });
  });

  const Row = (p: { key: K }) => {
    let el!: HTMLLIElement;
    onMount(() => {
      observer?.observe(el);
      onCleanup(() => observer?.unobserve(el));
    });
    return (
      <li ref={el} class="vrow" data-row-key={p.key}>
        {props.children(p.key)}
      </li>
    );
  };

  return (
    <div
      ref={scroller}
      id={props.id}
      class={`vlist ${props.class ?? ""}`}
      data-testid={props["data-testid"]}
      data-rows={props.keys().length}
      onScroll={onScroll}
    >
      <ul class="vlist-rows" aria-label={props["aria-label"]}>
        <li ref={topSpacer} class="vspacer" aria-hidden="true" />
        <For each={visible()}>{(key) => <Row key={key} />}</For>
        <li ref={bottomSpacer} class="vspacer" aria-hidden="true" />
      </ul>
    </div>
  );
}
