//! `confab-cli community ...`: communities, their invites, channels and members, on a
//! [`Connection`] (its model then knows the community and the names of its members).
//! A channel is a room: `chat`, `search` and `call` take its id.

use super::Session;
use super::messenger::{print_json, with_connection};
use clap::{Args, Subcommand};
use confab_core::api::CommunityQuery;
use confab_core::connection::{Connection, ConnectionError};
use shared::api::CreateInviteRequest;
use shared::communities::{
    COMMUNITY_PAGE_MAX, ChannelSummary, CommunitySummary, CommunityVisibility,
    CreateChannelRequest, CreateCommunityRequest,
};
use shared::{CommunityId, UserId};

#[derive(Args, Debug)]
pub struct CommunityArgs {
    #[command(flatten)]
    session: Session,
    #[command(subcommand)]
    action: CommunityAction,
}

/// ID is a community id (as `community list` prints it); USER a username or a user id.
#[derive(Subcommand, Debug)]
enum CommunityAction {
    /// List the communities I am in, or with --public the public ones anyone may join.
    List {
        /// Only those with this text in their name or description.
        #[arg(long, value_name = "TEXT")]
        q: Option<String>,
        /// Public communities (discover), whether or not I am in them.
        #[arg(long)]
        public: bool,
        /// At most this many (pages are fetched until there are this many).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
    },
    /// Create a community owned by me, with a #general channel; prints its id.
    Create {
        name: String,
        /// Unlisted, joined through invites only (default: public).
        #[arg(long)]
        private: bool,
        #[arg(long)]
        description: Option<String>,
    },
    /// Join a public community by its id, or any community by an invite code or link.
    Join {
        #[arg(value_name = "ID|INVITE")]
        target: String,
    },
    /// Leave a community.
    Leave { id: CommunityId },
    /// Make an invite (admins); prints its code, which `community join` takes.
    Invite {
        id: CommunityId,
        /// Lifetime in seconds (60 s to 30 days; default 7 days).
        #[arg(long)]
        expires_in: Option<u64>,
        /// How many people may use it (default: no limit).
        #[arg(long)]
        max_uses: Option<u32>,
    },
    /// List a community's channels in order, with my unread counts.
    Channels { id: CommunityId },
    /// Create a channel (admins); prints its id, a room id for `chat`, `search` and `call`.
    ChannelCreate {
        id: CommunityId,
        name: String,
        /// The heading it is listed under.
        #[arg(long)]
        category: Option<String>,
        #[arg(long)]
        topic: Option<String>,
        /// Only admins may write in it.
        #[arg(long)]
        announcement: bool,
    },
    /// List the members: owner and admins first, with roles and presence.
    Members { id: CommunityId },
    /// Remove a member (admins); they may join again.
    Kick {
        id: CommunityId,
        #[arg(value_name = "USER")]
        who: String,
    },
    /// Ban a user (admins): removed if a member, and refused if they try to join again.
    Ban {
        id: CommunityId,
        #[arg(value_name = "USER")]
        who: String,
        /// Why (the admins see it in the ban list).
        #[arg(long)]
        reason: Option<String>,
    },
}

/// The invite code in what was given: the code itself, or a link ending in it.
fn invite_code(input: &str) -> Option<&str> {
    let code = input
        .trim()
        .trim_end_matches('/')
        .rsplit('/')
        .next()?
        .trim();
    (!code.is_empty()).then_some(code)
}

fn print_community(json: bool, c: &CommunitySummary) -> anyhow::Result<()> {
    if json {
        return print_json(c);
    }
    let info = &c.community;
    let members = match info.member_count {
        1 => "1 member".to_owned(),
        n => format!("{n} members"),
    };
    let role = c
        .my_role
        .map_or_else(String::new, |r| format!(", {}", r.as_str()));
    let unread = match (c.unread_count, c.mention_count) {
        (0, _) => String::new(),
        (n, 0) => format!(", {n} unread"),
        (n, m) => format!(", {n} unread, {m} mentions"),
    };
    println!(
        "{} {} ({}, {members}{role}{unread}){}",
        info.id,
        info.name,
        info.visibility.as_str(),
        if info.description.is_empty() {
            String::new()
        } else {
            format!(": {}", info.description.replace('\n', " "))
        }
    );
    Ok(())
}

fn print_channel(json: bool, c: &ChannelSummary) -> anyhow::Result<()> {
    if json {
        return print_json(c);
    }
    let ch = &c.channel;
    let mut notes = Vec::new();
    if let Some(category) = &ch.category {
        notes.push(format!("in {category}"));
    }
    if ch.announcement {
        notes.push("announcements".to_owned());
    }
    if c.unread_count > 0 {
        notes.push(format!("{} unread", c.unread_count));
    }
    if c.mention_count > 0 {
        notes.push(format!("{} mentions", c.mention_count));
    }
    if c.call_participants > 0 {
        notes.push(format!("{} in the call", c.call_participants));
    }
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join(", "))
    };
    let topic = ch
        .topic
        .as_deref()
        .map_or_else(String::new, |t| format!(": {}", t.replace('\n', " ")));
    println!("{} #{}{notes}{topic}", ch.id, ch.name);
    Ok(())
}

/// A user by id, by the username of a member of the community, or by the server's user
/// search (to ban someone who is not a member).
async fn member(conn: &Connection, id: CommunityId, who: &str) -> anyhow::Result<UserId> {
    let who = who.trim();
    if let Ok(user) = who.parse::<UserId>() {
        return Ok(user);
    }
    let mut cursor: Option<String> = None;
    loop {
        let page = conn.community_members(id, cursor.as_deref()).await?;
        if let Some(m) = page
            .members
            .iter()
            .find(|m| m.user.username.eq_ignore_ascii_case(who))
        {
            return Ok(m.user.id);
        }
        match page.next_cursor {
            Some(next) if cursor.as_deref() != Some(next.as_str()) => cursor = Some(next),
            _ => break,
        }
    }
    Ok(conn.resolve_user(who).await?)
}

fn done(json: bool, what: &str, value: &str) -> anyhow::Result<()> {
    if json {
        print_json(&serde_json::json!({ what: value }))
    } else {
        println!("{what} {value}");
        Ok(())
    }
}

pub async fn run(args: CommunityArgs) -> anyhow::Result<()> {
    let json = args.session.json;
    with_connection(&args.session, |conn, _events| async move {
        let result = act(&conn, json, args.action).await;
        (conn, result)
    })
    .await
}

async fn act(conn: &Connection, json: bool, action: CommunityAction) -> anyhow::Result<()> {
    match action {
        CommunityAction::List { q, public, limit } => {
            let mut query = if public {
                CommunityQuery::discover(q)
            } else {
                CommunityQuery {
                    q,
                    ..CommunityQuery::default()
                }
            };
            let mut left = limit;
            while left > 0 {
                query.limit = Some(left.min(COMMUNITY_PAGE_MAX));
                let page = conn.find_communities(&query).await?;
                for c in page.communities.iter().take(left as usize) {
                    print_community(json, c)?;
                }
                left = left.saturating_sub(u32::try_from(page.communities.len()).unwrap_or(left));
                match page.next_cursor {
                    Some(next) if query.cursor.as_deref() != Some(next.as_str()) => {
                        query.cursor = Some(next);
                    }
                    _ => break,
                }
            }
        }
        CommunityAction::Create {
            name,
            private,
            description,
        } => {
            let request = CreateCommunityRequest {
                name,
                description,
                visibility: Some(if private {
                    CommunityVisibility::Private
                } else {
                    CommunityVisibility::Public
                }),
            };
            let state = conn.create_community(&request).await?;
            if json {
                print_json(&serde_json::json!({
                    "community": state.summary,
                    "channels": state.channels,
                }))?;
            } else {
                println!("{}", state.summary.community.id);
            }
        }
        CommunityAction::Join { target } => {
            let state = match target.trim().parse::<CommunityId>() {
                Ok(id) => conn.join_community(id).await?,
                Err(_) => {
                    let code = invite_code(&target).ok_or_else(|| {
                        ConnectionError::Invalid("give a community id or an invite code".into())
                    })?;
                    conn.accept_community_invite(code).await?
                }
            };
            if json {
                print_json(&serde_json::json!({
                    "community": state.summary,
                    "channels": state.channels,
                }))?;
            } else {
                let c = &state.summary.community;
                println!("joined {} {}", c.id, c.name);
            }
        }
        CommunityAction::Leave { id } => {
            conn.leave_community(id).await?;
            done(json, "left", &id.to_string())?;
        }
        CommunityAction::Invite {
            id,
            expires_in,
            max_uses,
        } => {
            let request = CreateInviteRequest {
                expires_in,
                max_uses,
            };
            let invite = conn.create_community_invite(id, &request).await?;
            if json {
                print_json(&invite)?;
            } else {
                println!("{}", invite.token);
            }
        }
        CommunityAction::Channels { id } => {
            for c in &conn.api().channels(id).await? {
                print_channel(json, c)?;
            }
        }
        CommunityAction::ChannelCreate {
            id,
            name,
            category,
            topic,
            announcement,
        } => {
            let request = CreateChannelRequest {
                name,
                topic,
                category,
                announcement: Some(announcement),
                max_participants: None,
            };
            let channel = conn.create_channel(id, &request).await?;
            if json {
                print_json(&channel)?;
            } else {
                println!("{}", channel.id);
            }
        }
        CommunityAction::Members { id } => {
            let mut cursor: Option<String> = None;
            loop {
                let page = conn.community_members(id, cursor.as_deref()).await?;
                for m in &page.members {
                    if json {
                        print_json(m)?;
                    } else {
                        println!(
                            "{} {} {} {:?}",
                            m.user.id,
                            m.user.username,
                            m.role.as_str(),
                            m.presence
                        );
                    }
                }
                match page.next_cursor {
                    Some(next) if cursor.as_deref() != Some(next.as_str()) => cursor = Some(next),
                    _ => break,
                }
            }
        }
        CommunityAction::Kick { id, who } => {
            let user = member(conn, id, &who).await?;
            conn.kick_community_member(id, user).await?;
            done(json, "kicked", &who)?;
        }
        CommunityAction::Ban { id, who, reason } => {
            let user = member(conn, id, &who).await?;
            let ban = conn.ban_from_community(id, user, reason).await?;
            if json {
                print_json(&ban)?;
            } else {
                println!("banned {}", ban.user.username);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::invite_code;

    #[test]
    fn an_invite_is_its_code_or_a_link_ending_in_it() {
        assert_eq!(invite_code(" abc123 "), Some("abc123"));
        assert_eq!(
            invite_code("https://confab.example/api/communities/join/abc123/"),
            Some("abc123")
        );
        assert_eq!(invite_code("  "), None);
    }
}
