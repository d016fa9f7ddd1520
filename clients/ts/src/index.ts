// ringport-client: the TypeScript client of ringport-game (docs/ts-client.md).
// The client (client.ts), the frame layer and engine control messages
// (frames.ts), and the game messages generated from proto/game.schema
// (protocol.ts, also importable alone as "ringport-client/protocol").

export * from "./client.js";
export * from "./frames.js";
export * from "./protocol.js";
