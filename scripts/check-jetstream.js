// Exit 0 when the NATS server at argv[2] has JetStream enabled for our account; prints its version.
const { connect } = require('nats');

(async () => {
  const nc = await connect({ servers: process.argv[2], timeout: 2000, reconnect: false });
  try {
    const jsm = await nc.jetstreamManager({ timeout: 2000 });
    await jsm.getAccountInfo();
    console.log(nc.info?.version ?? 'unknown');
  } finally {
    await nc.close();
  }
})().catch(() => process.exit(1));
