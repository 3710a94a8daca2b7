import { describe, expect, it } from 'vitest';
import { joinContinuation, parseCommand } from './commands.js';

describe('parseCommand', () => {
  it('reads plain lines as messages, blank lines as nothing', () => {
    expect(parseCommand('Tell me a story')).toEqual({ type: 'say', text: 'Tell me a story' });
    expect(parseCommand('  ')).toEqual({ type: 'empty' });
    expect(parseCommand('')).toEqual({ type: 'empty' });
  });

  it('sends a line starting with // as one starting with /', () => {
    expect(parseCommand('//etc/hosts is a file')).toEqual({ type: 'say', text: '/etc/hosts is a file' });
  });

  it('reads the commands and their aliases, in any case', () => {
    expect(parseCommand('/reset')).toEqual({ type: 'reset' });
    expect(parseCommand('/CLEAR')).toEqual({ type: 'reset' });
    expect(parseCommand('/exit')).toEqual({ type: 'exit' });
    expect(parseCommand('/quit  ')).toEqual({ type: 'exit' });
    expect(parseCommand('/help')).toEqual({ type: 'help' });
    expect(parseCommand('/params')).toEqual({ type: 'params', args: '' });
    expect(parseCommand('/params temperature=0.7 top_k=40')).toEqual({ type: 'params', args: 'temperature=0.7 top_k=40' });
  });

  it('shows, sets and clears the system prompt', () => {
    expect(parseCommand('/system')).toEqual({ type: 'system', text: undefined });
    expect(parseCommand('/system You are terse.  ')).toEqual({ type: 'system', text: 'You are terse.' });
    expect(parseCommand('/system -')).toEqual({ type: 'system', text: null });
    expect(parseCommand('/system line one\nline two')).toEqual({ type: 'system', text: 'line one\nline two' });
  });

  it('names an unknown command', () => {
    expect(parseCommand('/frobnicate now')).toEqual({ type: 'unknown', name: '/frobnicate' });
    expect(parseCommand('/')).toEqual({ type: 'unknown', name: '/' });
  });
});

describe('joinContinuation', () => {
  it('waits for more while a line ends in a backslash', () => {
    const first = joinContinuation(undefined, 'first line\\');
    expect(first).toEqual({ pending: 'first line' });
    const second = joinContinuation(first.pending, 'second\\');
    expect(second).toEqual({ pending: 'first line\nsecond' });
    expect(joinContinuation(second.pending, 'third')).toEqual({ done: 'first line\nsecond\nthird' });
  });

  it('passes a plain line through', () => {
    expect(joinContinuation(undefined, 'hello')).toEqual({ done: 'hello' });
  });
});
