//! `confab-cli search`: the messages of every room I am in (direct, groups, community
//! channels) with the server's matched words marked [like this], one hit a line.

use super::Session;
use super::messenger::{Names, SYNC_TIMEOUT, print_json, with_connection};
use clap::{Args, ValueEnum};
use confab_core::api::SearchQuery;
use confab_core::connection::Connection;
use shared::RoomId;
use shared::api::RoomKind;
use shared::search::{Highlight, SEARCH_PAGE_MAX, SearchHit, SearchOrder};

#[derive(Args, Debug)]
pub struct SearchArgs {
    #[command(flatten)]
    session: Session,
    /// The words to find: every one must occur, in any case ("meet" finds "Meeting").
    #[arg(required = true, value_name = "QUERY")]
    words: Vec<String>,
    /// Only this room's (or channel's) messages.
    #[arg(long)]
    room: Option<RoomId>,
    /// Only this user's messages (a username or a user id).
    #[arg(long, value_name = "USER")]
    author: Option<String>,
    /// Only messages sent on or after this day (UTC).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = day)]
    after: Option<String>,
    /// Only messages sent before this day (UTC).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = day)]
    before: Option<String>,
    #[arg(long, value_enum, default_value_t = Order::Newest)]
    order: Order,
    /// At most this many hits (pages are fetched until there are this many).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    limit: u32,
}

/// The order of the hits.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Order {
    /// Newest message first.
    Newest,
    /// Best match first.
    Best,
}

/// A `YYYY-MM-DD` day, checked here so a typo gets a plain answer.
fn day(s: &str) -> Result<String, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s.trim(), &format)
        .map(|_| s.trim().to_owned())
        .map_err(|_| "a day is written YYYY-MM-DD, e.g. 2026-12-01".to_owned())
}

/// `body` with every highlighted stretch in [brackets], on one line (line breaks become
/// spaces). Highlights are in characters; any out of order or out of range are skipped.
pub fn marked(body: &str, highlights: &[Highlight]) -> String {
    let chars: Vec<char> = body
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    let mut out = String::with_capacity(body.len() + 2 * highlights.len());
    let mut at = 0;
    for h in highlights {
        let (start, end) = (h.start as usize, (h.end as usize).min(chars.len()));
        if start < at || start >= end {
            continue;
        }
        out.extend(&chars[at..start]);
        out.push('[');
        out.extend(&chars[start..end]);
        out.push(']');
        at = end;
    }
    out.extend(&chars[at..]);
    out
}

/// "# general · Readers" for a channel, a group's title, the other person in a direct room.
fn room_title(conn: &Connection, room: RoomId) -> String {
    let Some(summary) = conn.room(room) else {
        return room.to_string();
    };
    match summary.room.kind {
        RoomKind::Direct => summary
            .other_user
            .map_or_else(|| room.to_string(), |u| u.username),
        RoomKind::Channel => match conn.community_of(room).and_then(|c| conn.community(c)) {
            Some(c) => format!("# {} · {}", summary.room.title, c.summary.community.name),
            None => format!("# {}", summary.room.title),
        },
        RoomKind::Group => summary.room.title,
    }
}

fn when(hit: &SearchHit) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    hit.created_at
        .to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

pub async fn run(args: SearchArgs) -> anyhow::Result<()> {
    let json = args.session.json;
    with_connection(&args.session, |conn, _events| async move {
        let result = async {
            let author = match &args.author {
                Some(who) => Some(conn.resolve_user(who).await?),
                None => None,
            };
            let mut query = SearchQuery {
                q: args.words.join(" "),
                room: args.room,
                author,
                after: args.after,
                before: args.before,
                order: Some(match args.order {
                    Order::Newest => SearchOrder::Newest,
                    Order::Best => SearchOrder::Best,
                }),
                ..SearchQuery::default()
            };
            // The rooms' titles come from the first resync.
            let _ = tokio::time::timeout(SYNC_TIMEOUT, conn.wait_synced()).await;
            let mut names = Names::default();
            let mut left = args.limit;
            let mut printed = 0;
            while left > 0 {
                query.limit = Some(left.min(SEARCH_PAGE_MAX));
                let page = conn.api().search(&query).await?;
                for hit in page.hits.iter().take(left as usize) {
                    let room = room_title(&conn, hit.room_id);
                    let author = names.of(&conn, hit.author).await;
                    let body = marked(&hit.body, &hit.highlights);
                    if json {
                        let mut value = serde_json::to_value(hit)?;
                        value["room_title"] = serde_json::json!(room);
                        value["author_name"] = serde_json::json!(author);
                        value["marked"] = serde_json::json!(body);
                        print_json(&value)?;
                    } else {
                        println!("{room} | {author} | {} | {body}", when(hit));
                    }
                    printed += 1;
                    left -= 1;
                }
                // A page may be short and still have more: follow the cursor.
                match page.next_cursor {
                    Some(next) if query.cursor.as_deref() != Some(next.as_str()) => {
                        query.cursor = Some(next);
                    }
                    _ => break,
                }
            }
            if printed == 0 {
                eprintln!("no messages found");
            }
            Ok(())
        }
        .await;
        (conn, result)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(start: u32, end: u32) -> Highlight {
        Highlight { start, end }
    }

    #[test]
    fn matched_words_are_bracketed_by_characters_on_one_line() {
        assert_eq!(
            marked("the Budget review", &[h(4, 10)]),
            "the [Budget] review"
        );
        // Characters, not bytes: the Cyrillic word is 6 characters, 12 bytes.
        assert_eq!(marked("Привет мир", &[h(0, 6), h(7, 10)]), "[Привет] [мир]");
        assert_eq!(marked("two\nlines", &[h(4, 9)]), "two [lines]");
        // Out of range or overlapping marks cannot garble the text.
        assert_eq!(marked("abc", &[h(1, 99), h(0, 2)]), "a[bc]");
        assert_eq!(marked("abc", &[]), "abc");
    }
}
