//! Real calls between headless clients over loopback: the real server, real WebSockets,
//! real WebRTC (ICE, DTLS-SRTP) carrying VP8 and Opus encoded from synthetic sources.
//! Every test checks what arrived by decoding it: frame counters read back from the
//! test pattern must increase, and each side's tone must be found at its frequency.

#![allow(clippy::unwrap_used)]

mod common;

// SQLite only (see tests/common): calls are CPU-heavy, and one database is enough here.
use common::{Db, PASSWORD, TestServer, unique};
use confab_core::api::ApiClient;
use confab_core::call::{AudioSource, Call, CallConfig, CallEvent};
use confab_core::keystore::MemoryStore;
use confab_core::signaling::{SignalingClient, SignalingConfig};
use confab_media::audio::tone::dominant_tone;
use shared::api::{CreateRoomRequest, RegisterRequest};
use shared::{ParticipantId, RoomId, UserId};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

/// Generous: this machine has two cores and runs other builds.
const PATIENCE: Duration = Duration::from_secs(30);

struct Member {
    api: ApiClient,
    user_id: UserId,
    tone: f64,
}

async fn member(server: &TestServer, tone: f64) -> Member {
    let api = ApiClient::new(&server.base, Arc::new(MemoryStore::new())).unwrap();
    let name = unique("caller");
    api.register(&RegisterRequest {
        username: name.clone(),
        email: format!("{name}@example.com"),
        password: PASSWORD.to_owned(),
        confirm_password: PASSWORD.to_owned(),
    })
    .await
    .unwrap();
    let me = api.login(&name, PASSWORD).await.unwrap();
    Member {
        api,
        user_id: me.id,
        tone,
    }
}

async fn room_for(members: &[&Member]) -> RoomId {
    let room = members[0]
        .api
        .create_room(&CreateRoomRequest {
            title: "call".into(),
            max_participants: Some(8),
        })
        .await
        .unwrap();
    for m in &members[1..] {
        m.api.join_room(room.id).await.unwrap();
    }
    room.id
}

/// Joins the room's call with the test pattern and this member's tone.
fn join(member: &Member, room: RoomId) -> (Call, mpsc::UnboundedReceiver<CallEvent>) {
    let (client, events) = SignalingClient::start(
        SignalingConfig::new(member.api.ws_url().to_string()),
        Arc::new(member.api.clone()),
    );
    let mut config = CallConfig::synthetic(room);
    config.audio = Some(AudioSource::Tone {
        frequency: member.tone,
    });
    config.udp_addrs = vec!["127.0.0.1:0".to_owned()];
    Call::start(client, events, config).unwrap()
}

/// Waits until `call` decodes `frames` frames from `user` whose test-pattern counters
/// strictly increase; returns the participant id they came from.
async fn sees_video_from(call: &Call, user: UserId, frames: usize) -> ParticipantId {
    let mut rx = call.video_frames();
    let deadline = Instant::now() + PATIENCE;
    let mut last: Option<(ParticipantId, u32)> = None;
    let mut seen = 0;
    loop {
        let frame = match timeout(deadline - Instant::now(), rx.recv()).await {
            Ok(Ok(frame)) => frame,
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(e)) => panic!("video sink closed: {e}"),
            Err(_) => panic!("saw {seen} of {frames} frames from {user} in time"),
        };
        if frame.user_id != user {
            continue;
        }
        let marker = frame
            .marker
            .expect("every decoded test-pattern frame carries its marker");
        if let Some((pid, counter)) = last
            && pid == frame.participant_id
        {
            assert!(
                marker.counter > counter,
                "frame counters go up: {} after {counter}",
                marker.counter
            );
        }
        last = Some((frame.participant_id, marker.counter));
        seen += 1;
        if seen >= frames {
            return frame.participant_id;
        }
    }
}

/// Collects a second of `user`'s audio and checks that `tone` dominates it.
async fn hears_tone_from(call: &Call, user: UserId, tone: f64, others: &[f64]) {
    let mut rx = call.remote_audio();
    let deadline = Instant::now() + PATIENCE;
    let mut samples = Vec::new();
    while samples.len() < 48_000 {
        match timeout(deadline - Instant::now(), rx.recv()).await {
            Ok(Ok(chunk)) if chunk.user_id == user => samples.extend_from_slice(&chunk.samples),
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("audio sink closed: {e}"),
            Err(_) => panic!("heard {} samples from {user} in time", samples.len()),
        }
    }
    // Skip the start, where the decoder ramps up.
    let candidates: Vec<f64> = std::iter::once(tone)
        .chain(others.iter().copied())
        .collect();
    assert_eq!(
        dominant_tone(&samples[9_600..], &candidates, 48_000),
        Some(tone)
    );
}

async fn wait_for(
    events: &mut mpsc::UnboundedReceiver<CallEvent>,
    what: &str,
    pred: impl Fn(&CallEvent) -> bool,
) -> CallEvent {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match timeout(deadline - Instant::now(), events.recv()).await {
            Ok(Some(e)) if pred(&e) => return e,
            Ok(Some(_)) => {}
            Ok(None) => panic!("call events ended while waiting for {what}"),
            Err(_) => panic!("no {what} in time"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_see_and_hear_each_other() {
    let server = TestServer::start(Db::Sqlite).await;
    let alice = member(&server, 440.0).await;
    let bob = member(&server, 660.0).await;
    let room = room_for(&[&alice, &bob]).await;

    let (a, mut a_events) = join(&alice, room);
    let (b, _b_events) = join(&bob, room);

    sees_video_from(&a, bob.user_id, 30).await;
    sees_video_from(&b, alice.user_id, 30).await;
    hears_tone_from(&a, bob.user_id, 660.0, &[440.0]).await;
    hears_tone_from(&b, alice.user_id, 440.0, &[660.0]).await;

    // Stats flow once a second and describe real media.
    let CallEvent::Stats(stats) = wait_for(&mut a_events, "stats with frames", |e| {
        matches!(e, CallEvent::Stats(s) if s.user_id == bob.user_id && s.frames_decoded > 0 && s.fps > 0.0)
    })
    .await
    else {
        unreachable!()
    };
    assert_eq!((stats.width, stats.height), (640, 480));
    assert!(stats.recv_kbps > 0.0 && stats.send_kbps > 0.0, "{stats:?}");

    a.leave().await;
    b.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_participant_leaves_and_comes_back() {
    let server = TestServer::start(Db::Sqlite).await;
    let alice = member(&server, 440.0).await;
    let bob = member(&server, 660.0).await;
    let carol = member(&server, 880.0).await;
    let room = room_for(&[&alice, &bob, &carol]).await;

    let (a, mut a_events) = join(&alice, room);
    let (b, mut b_events) = join(&bob, room);
    let (c, _c_events) = join(&carol, room);
    for (call, others) in [
        (&a, [&bob, &carol]),
        (&b, [&alice, &carol]),
        (&c, [&alice, &bob]),
    ] {
        for other in others {
            sees_video_from(call, other.user_id, 15).await;
        }
    }

    c.leave().await;
    for events in [&mut a_events, &mut b_events] {
        wait_for(events, "carol leaving", |e| matches!(e, CallEvent::ParticipantLeft { user_id, .. } if *user_id == carol.user_id)).await;
    }

    let (c, _c_events) = join(&carol, room);
    for events in [&mut a_events, &mut b_events] {
        wait_for(
            events,
            "carol rejoining",
            |e| matches!(e, CallEvent::ParticipantJoined(p) if p.user_id == carol.user_id),
        )
        .await;
    }
    sees_video_from(&a, carol.user_id, 15).await;
    sees_video_from(&b, carol.user_id, 15).await;
    sees_video_from(&c, alice.user_id, 15).await;
    hears_tone_from(&a, carol.user_id, 880.0, &[660.0]).await;

    for call in [a, b, c] {
        call.leave().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_recovers_when_the_server_restarts() {
    let mut server = TestServer::start(Db::Sqlite).await;
    let alice = member(&server, 440.0).await;
    let bob = member(&server, 660.0).await;
    let room = room_for(&[&alice, &bob]).await;
    let (a, mut a_events) = join(&alice, room);
    let (b, _b_events) = join(&bob, room);
    let before = sees_video_from(&a, bob.user_id, 15).await;

    server.restart().await;

    wait_for(&mut a_events, "a reconnect", |e| {
        matches!(e, CallEvent::Reconnecting { .. })
    })
    .await;
    wait_for(&mut a_events, "the call again", |e| {
        matches!(e, CallEvent::Joined { .. })
    })
    .await;
    // Frames from bob's new connection (a new participant id) arrive again, both ways.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let after = sees_video_from(&a, bob.user_id, 15).await;
        if after != before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no video from bob's new connection"
        );
    }
    sees_video_from(&b, alice.user_id, 15).await;
    a.leave().await;
    b.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mute_camera_off_and_switching_devices() {
    let server = TestServer::start(Db::Sqlite).await;
    let alice = member(&server, 440.0).await;
    let bob = member(&server, 660.0).await;
    let room = room_for(&[&alice, &bob]).await;
    let (a, _a_events) = join(&alice, room);
    let (b, mut b_events) = join(&bob, room);
    sees_video_from(&b, alice.user_id, 10).await;

    // Camera off: bob is told, and alice's frames stop.
    a.set_camera_off(true);
    wait_for(&mut b_events, "camera off", |e| {
        matches!(
            e,
            CallEvent::MediaState {
                video_muted: true,
                ..
            }
        )
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut frames = b.video_frames();
    let quiet = timeout(Duration::from_secs(1), async {
        loop {
            match frames.recv().await {
                Ok(f) if f.user_id == alice.user_id => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => std::future::pending::<()>().await,
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "no video arrives while the camera is off");

    // Camera on again: video resumes (from a keyframe).
    a.set_camera_off(false);
    wait_for(&mut b_events, "camera on", |e| {
        matches!(
            e,
            CallEvent::MediaState {
                video_muted: false,
                ..
            }
        )
    })
    .await;
    sees_video_from(&b, alice.user_id, 10).await;

    // Mute: bob is told; switching the audio source to another tone is heard after unmuting.
    a.set_microphone_muted(true);
    wait_for(&mut b_events, "mute", |e| {
        matches!(
            e,
            CallEvent::MediaState {
                audio_muted: true,
                ..
            }
        )
    })
    .await;
    a.switch_audio(AudioSource::Tone { frequency: 1000.0 });
    a.set_microphone_muted(false);
    wait_for(&mut b_events, "unmute", |e| {
        matches!(
            e,
            CallEvent::MediaState {
                audio_muted: false,
                ..
            }
        )
    })
    .await;
    hears_tone_from(&b, alice.user_id, 1000.0, &[440.0, 660.0]).await;

    // Switching the video source (here to a smaller test pattern) keeps the call going.
    a.switch_video(confab_core::call::VideoSource::TestPattern {
        width: 320,
        height: 240,
        fps: 15,
    });
    let deadline = Instant::now() + PATIENCE;
    let mut frames = b.video_frames();
    loop {
        assert!(
            Instant::now() < deadline,
            "no 320x240 frames after switching"
        );
        if let Ok(Ok(f)) = timeout(Duration::from_secs(1), frames.recv()).await
            && f.user_id == alice.user_id
            && f.frame.width() == 320
        {
            break;
        }
    }
    a.leave().await;
    b.leave().await;
}

/// The next frame of our own encoded video.
async fn next_local(
    rx: &mut tokio::sync::broadcast::Receiver<Arc<confab_core::call::LocalEncodedFrame>>,
) -> Arc<confab_core::call::LocalEncodedFrame> {
    match timeout(PATIENCE, rx.recv()).await {
        Ok(Ok(frame)) => frame,
        Ok(Err(e)) => panic!("our encoded video: {e}"),
        Err(_) => panic!("no encoded frame of our own in time"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_self_view_decodes_our_own_frames_from_the_keyframe_it_asks_for() {
    use confab_media::video::pattern::read_marker;
    use confab_media::video::vp8::Vp8Decoder;
    let server = TestServer::start(Db::Sqlite).await;
    let alice = member(&server, 440.0).await;
    let room = room_for(&[&alice]).await;
    let (call, mut events) = join(&alice, room);
    wait_for(&mut events, "joined", |e| {
        matches!(e, CallEvent::Joined { .. })
    })
    .await;
    let local = call.local_video_control().clone();
    let mut rx = call.local_encoded_frames();
    // Alone in the call, the encoder's only keyframe is its first: a self-view that
    // starts later sees delta frames until it asks.
    let mut deltas = 0;
    for _ in 0..100 {
        if next_local(&mut rx).await.is_keyframe {
            deltas = 0;
        } else {
            deltas += 1;
        }
        if deltas == 5 {
            break;
        }
    }
    assert_eq!(deltas, 5, "keyframes keep coming unasked");
    // A burst of requests costs at most two keyframes (one answers those the capture
    // thread read before it, one those after, half a second later).
    for _ in 0..10 {
        local.request_keyframe();
    }
    let mut decoder = Vp8Decoder::new().unwrap();
    let (mut keyframes, mut decoded, mut last_counter) = (0, 0, None::<u32>);
    for _ in 0..45 {
        let frame = next_local(&mut rx).await;
        if frame.is_keyframe {
            keyframes += 1;
        } else if keyframes == 0 {
            continue;
        }
        let picture = decoder
            .decode(&frame.data, frame.captured_at_us)
            .unwrap()
            .expect("a picture per frame");
        assert_eq!(
            (picture.width(), picture.height()),
            (frame.width, frame.height)
        );
        let counter = read_marker(&picture)
            .expect("the test pattern's marker")
            .counter;
        if let Some(last) = last_counter {
            assert!(counter > last, "counters go up: {counter} after {last}");
        }
        last_counter = Some(counter);
        decoded += 1;
    }
    assert!(
        (1..=2).contains(&keyframes),
        "{keyframes} keyframes for a burst of requests"
    );
    assert!(decoded >= 30, "decoded {decoded} of our frames");
    call.leave().await;
}
