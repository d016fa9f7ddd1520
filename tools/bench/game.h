/*
 * ringport-bench game: bots that play ringport-game (examples/game) and
 * check every reply. main.c dispatches `ringport-bench game ...` here;
 * argv[0] is "game". Returns the exit status: 0 all verified, 1 any
 * verification error, timeout, unexpected close or failed connect, 2 a
 * bad flag. docs/bench-tool.md ("game mode") and docs/protocol.md ("Game
 * messages") describe what the bots do and check.
 */
#ifndef RINGPORT_BENCH_GAME_H
#define RINGPORT_BENCH_GAME_H

int game_main(int argc, char **argv);

#endif
