// The loop, its threads, timers, eventfds and byte readers moved to the Loop module (the bottom
// layer every module shares); re-exported so that files importing this module keep seeing them.
@_exported import Loop
