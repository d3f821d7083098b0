// Route -> screen.

import type { App, Route, Screen } from "../app";
import { callScreen } from "../call/view";
import { authScreen } from "./auth";
import { prejoinScreen } from "./prejoin";
import { roomsScreen } from "./rooms";
import { serverScreen } from "./server";

export function renderScreen(app: App, route: Route): Screen {
  switch (route.name) {
    case "server":
      return serverScreen(app, route.current ?? null);
    case "auth":
      return authScreen(app, route.tab);
    case "rooms":
      return roomsScreen(app);
    case "prejoin":
      return prejoinScreen(app, route.room);
    case "call":
      return callScreen(app, route.room, route.settings);
  }
}
