// The interview call page: joins the interview (or uses a room token given in the address),
// meets the other party through the signaling service and runs the call. `window.anjiaCall`
// exposes the call's state for the browser test.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.hash.slice(1));
  const call = {
    status: 'starting',
    pc: null,
    you: null,
    peerLeft: false,
    errors: [],
    socket: null,
    // The number of the last relayed message received: a reconnection resumes after it.
    lastSeq: null,
    reconnects: 0,
    ended: false,
  };
  window.anjiaCall = call;

  const STATUS = {
    starting: ['正在准备', 'Getting ready'],
    waiting: ['等待对方加入', 'Waiting for the other party'],
    connecting: ['正在连接', 'Connecting'],
    connected: ['通话中', 'In the call'],
    disconnected: ['连接中断，正在恢复', 'Connection lost, recovering'],
    failed: ['连接失败', 'The connection failed'],
    closed: ['通话已结束', 'The call has ended'],
    'peer-left': ['对方已离开', 'The other party left'],
  };
  const show = (key, detail) => {
    call.status = key;
    const [zh, en] = STATUS[key] || [key, key];
    $('status').textContent = detail ? `${zh} / ${en}：${detail}` : `${zh} / ${en}`;
  };
  const fail = (error) => {
    call.errors.push(String(error && error.message ? error.message : error));
    show('failed', call.errors[call.errors.length - 1]);
  };

  // The room token and ICE servers: from the address (a link handed out by the app), or by
  // joining the interview with the signed-in account's access token.
  async function admission() {
    if (params.get('token')) {
      return { room_token: params.get('token'), ice_servers: [] };
    }
    const interview = params.get('interview');
    const access = localStorage.getItem('anjia.access_token');
    if (!interview || !access) {
      throw new Error('缺少面试或登录信息 / missing interview or sign-in');
    }
    const response = await fetch(`/api/v1/interviews/${encodeURIComponent(interview)}/join`, {
      method: 'POST',
      headers: { authorization: `Bearer ${access}`, 'content-type': 'application/json' },
      body: '{}',
    });
    const body = await response.json();
    if (!response.ok) {
      throw new Error(body.detail || body.title || response.status);
    }
    return body;
  }

  async function start() {
    const admitted = await admission();
    const media = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    $('local').srcObject = media;
    const pc = new RTCPeerConnection({
      iceServers: (admitted.ice_servers || []).map((server) => ({
        urls: server.urls,
        username: server.username || undefined,
        credential: server.credential || undefined,
      })),
    });
    call.pc = pc;
    for (const track of media.getTracks()) {
      pc.addTrack(track, media);
    }
    pc.ontrack = (event) => {
      $('remote').srcObject = event.streams[0];
    };
    pc.onconnectionstatechange = () => {
      if (STATUS[pc.connectionState]) show(pc.connectionState);
    };

    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const address = () => {
      let url = `${scheme}//${location.host}/api/v1/signaling?token=${encodeURIComponent(admitted.room_token)}`;
      if (params.get('interview')) url += `&room=${encodeURIComponent(params.get('interview'))}`;
      if (call.lastSeq !== null) url += `&resume=${call.lastSeq}`;
      return url;
    };
    // What is said while the socket is down waits for the next one.
    const unsent = [];
    const send = (message) => {
      if (call.socket && call.socket.readyState === WebSocket.OPEN) {
        call.socket.send(JSON.stringify(message));
      } else {
        unsent.push(message);
      }
    };
    pc.onicecandidate = (event) => {
      const candidate = event.candidate;
      send({
        type: 'candidate',
        candidate: candidate ? candidate.candidate : '',
        sdpMid: candidate ? candidate.sdpMid : null,
        sdpMLineIndex: candidate ? candidate.sdpMLineIndex : null,
      });
    };

    // Candidates that come before the other side's description wait for it.
    const waiting = [];
    const flush = async () => {
      while (waiting.length) await pc.addIceCandidate(waiting.shift());
    };
    const handlers = {
      async joined(message) {
        call.you = message.you;
        if (message.peer_present) {
          // The one who arrives second makes the offer.
          show('connecting');
          const offer = await pc.createOffer();
          await pc.setLocalDescription(offer);
          send({ type: 'offer', sdp: offer.sdp });
        } else {
          show('waiting');
        }
      },
      async 'peer-joined'() {
        call.peerLeft = false;
        show('connecting');
      },
      async offer(message) {
        await pc.setRemoteDescription({ type: 'offer', sdp: message.sdp });
        await flush();
        const answer = await pc.createAnswer();
        await pc.setLocalDescription(answer);
        send({ type: 'answer', sdp: answer.sdp });
      },
      async answer(message) {
        await pc.setRemoteDescription({ type: 'answer', sdp: message.sdp });
        await flush();
      },
      async candidate(message) {
        if (!message.candidate) return;
        const candidate = {
          candidate: message.candidate,
          sdpMid: message.sdpMid,
          sdpMLineIndex: message.sdpMLineIndex,
        };
        if (pc.remoteDescription) await pc.addIceCandidate(candidate);
        else waiting.push(candidate);
      },
      async 'peer-left'() {
        call.peerLeft = true;
        show('peer-left');
      },
      async error(message) {
        call.errors.push(`${message.code}: ${message.message}`);
      },
      async pong() {},
    };
    // One message at a time, in the order they came.
    let queue = Promise.resolve();
    const receive = (event) => {
      const message = JSON.parse(event.data);
      if (typeof message.seq === 'number') call.lastSeq = message.seq;
      queue = queue
        .then(() => {
          const handler = handlers[message.type];
          return handler ? handler(message) : undefined;
        })
        .catch(fail);
    };
    // A dropped signaling connection comes back within the grace period (15 s), resuming after
    // the last message received; the call itself goes on meanwhile.
    const open = (attempt) => {
      const socket = new WebSocket(address());
      call.socket = socket;
      socket.onopen = () => {
        while (unsent.length && socket.readyState === WebSocket.OPEN) {
          socket.send(JSON.stringify(unsent.shift()));
        }
      };
      socket.onmessage = receive;
      socket.onclose = () => {
        if (call.ended) return;
        if (attempt >= 10) {
          show('disconnected');
          return;
        }
        call.reconnects += 1;
        setTimeout(() => open(attempt + 1), Math.min(250 * 2 ** attempt, 2000));
      };
    };
    let resumed = false;
    handlers.joined = ((first) => async (message) => {
      if (resumed) return;
      resumed = true;
      await first(message);
    })(handlers.joined);
    open(0);

    $('hangup').disabled = false;
    $('mute').disabled = false;
    $('hangup').onclick = () => {
      send({ type: 'leave' });
      call.ended = true;
      pc.close();
      for (const track of media.getTracks()) track.stop();
      call.socket.close();
      $('hangup').disabled = true;
      $('mute').disabled = true;
      show('closed');
    };
    $('mute').onclick = () => {
      const audio = media.getAudioTracks();
      const muted = audio.length > 0 && audio[0].enabled;
      for (const track of audio) track.enabled = !muted;
      $('mute').textContent = muted ? '取消静音 / Unmute' : '静音 / Mute';
    };
  }

  start().catch(fail);
})();
