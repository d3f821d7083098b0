// A community's side of the rail: its name with settings and leave, then its channels
// under their categories, each with its unread and mention marks.

import { For, Show } from "solid-js";
import { MegaphoneIcon } from "../icons";
import { useShell } from "../shell/context";
import { byCategory, type CommunityView, isAdmin } from "./api";

export function ChannelList(props: { community: CommunityView }) {
  const shell = useShell();
  const c = () => props.community;
  const openId = () => {
    const v = shell.view();
    return v.kind === "room" ? v.roomId : null;
  };
  const leave = async () => {
    if (c().myRole === "owner") {
      shell.fail(
        new Error("The owner cannot leave: hand the community over or delete it in its settings."),
      );
      return;
    }
    try {
      await shell.cApi.leave(c().id);
      shell.communities.drop(c().id);
      shell.setSpace(null);
      shell.go({ kind: "home" });
    } catch (e) {
      shell.fail(e);
    }
  };
  return (
    <nav
      class="rail channel-list"
      data-testid="channel-list"
      aria-label={`Channels of ${c().name}`}
    >
      <div class="rail-top">
        <h2 class="community-name" data-testid="community-name">
          {c().name}
        </h2>
        <div class="row">
          <button
            type="button"
            class="rail-entry"
            data-testid="community-settings-open"
            onClick={() => shell.go({ kind: "community", communityId: c().id })}
          >
            {isAdmin(c()) ? "Settings and members" : "About and members"}
          </button>
          <button
            type="button"
            class="ghost"
            data-testid="channel-search"
            onClick={() => shell.go({ kind: "search" })}
          >
            Search
          </button>
          <button
            type="button"
            class="ghost"
            data-testid="community-leave"
            onClick={() => void leave()}
          >
            Leave
          </button>
        </div>
      </div>
      <For each={byCategory(c().channels)}>
        {(group) => (
          <section class="channel-group">
            <Show when={group.category}>
              <h3 class="rail-heading" data-testid="channel-category">
                {group.category}
              </h3>
            </Show>
            <ul class="rail-list">
              <For each={group.channels}>
                {(ch) => {
                  const room = () => shell.store.state.rooms[ch.id];
                  const unread = () => room()?.unread ?? 0;
                  const mentions = () => room()?.mentions ?? 0;
                  return (
                    <li
                      data-testid="channel-row"
                      data-room-id={ch.id}
                      data-unread={String(unread())}
                      classList={{
                        "rail-room": true,
                        active: openId() === ch.id,
                        unread: unread() > 0,
                      }}
                    >
                      <button
                        type="button"
                        class="rail-open channel-open"
                        aria-current={openId() === ch.id ? "page" : undefined}
                        aria-label={[
                          `# ${ch.name}`,
                          unread() > 0 ? `${unread()} unread` : "",
                          mentions() > 0 ? `${mentions()} mentioning you` : "",
                        ]
                          .filter(Boolean)
                          .join(", ")}
                        onClick={() => shell.openRoom(ch.id)}
                      >
                        <span class="channel-hash" aria-hidden="true">
                          {ch.announcement ? <MegaphoneIcon /> : "#"}
                        </span>
                        <span class="rail-room-title" data-testid="channel-name">
                          {ch.name}
                        </span>
                        <Show when={(room()?.callParticipants ?? 0) > 0}>
                          <span class="badge call-badge" aria-hidden="true">
                            call
                          </span>
                        </Show>
                        <Show when={mentions() > 0}>
                          <span class="badge mention-badge" aria-hidden="true">
                            @{mentions()}
                          </span>
                        </Show>
                        <Show when={unread() > 0}>
                          <span
                            class="badge unread-badge"
                            classList={{ muted: room()?.muted ?? false }}
                            data-testid="channel-unread"
                            aria-hidden="true"
                          >
                            {unread()}
                          </span>
                        </Show>
                      </button>
                    </li>
                  );
                }}
              </For>
            </ul>
          </section>
        )}
      </For>
    </nav>
  );
}
