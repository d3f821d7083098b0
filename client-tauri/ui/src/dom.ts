// Tiny DOM builder: elements are made with createElement and text nodes, never innerHTML,
// so no markup (and no inline style attribute) ever comes from data.

type Attrs = Record<string, string | number | boolean | null | undefined>;
type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = String(value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, ...children);
  return el;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  }
}

/** getElementById that fails loudly: the screens build their own markup, so a miss is a bug. */
export function byId<T extends HTMLElement = HTMLElement>(
  id: string,
  root: ParentNode = document,
): T {
  // Ids here are plain identifiers made by this code, so no CSS escaping is needed.
  const el = root.querySelector(`#${id}`);
  if (!el) throw new Error(`#${id} not found`);
  return el as T;
}

/** Sets a toggle button's pressed state and its visible label. */
export function setPressed(button: HTMLButtonElement, pressed: boolean, label: string): void {
  button.setAttribute("aria-pressed", String(pressed));
  button.textContent = label;
}
