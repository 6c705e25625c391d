import { SyntaxClass } from './syntax.js';
import { QuotingScanner } from './quoting.js';
import type { Frame, Heredoc } from './state.js';

/**
 * Here-documents: `<<WORD` queues a body that starts after the next newline of the program level and runs
 * to a line equal to the (quote-removed) delimiter. Bodies are quoted regions; the terminator line is
 * `QuoteBreak` syntax. An unquoted delimiter leaves `$`, backquote and backslash active in the body.
 */
export abstract class HeredocScanner extends QuotingScanner {
  private readonly heredocQueue: Heredoc[] = [];
  private heredocNext = 0;

  /** A here-document delimiter word (`EOF`, `'EOF'`, `"E"OF`): queue its body for the next newline. */
  protected queueHeredoc(word: string, stripTabs: boolean): void {
    // Quote removal gives the terminator; any quoting disables expansion.
    const quoted = /['"\\]/.test(word);
    const delimiter = quoted ? word.replace(/['"\\]/g, '') : word;
    this.heredocQueue.push({
      delimiter,
      // A quoted newline in the delimiter (`<<'a⏎b'`): no line can equal it, the body runs to the end of
      // input. Comparing it at every line start would reread the lines that follow (quadratic).
      terminable: !delimiter.includes('\n'),
      stripTabs,
      expand: !quoted,
    });
  }

  /** After a newline: start the body of the next queued here-document, if any. */
  protected startPendingHeredoc(f: Frame): void {
    if (this.heredocNext >= this.heredocQueue.length || this.i >= this.n) return;
    const doc = this.heredocQueue[this.heredocNext++]!;
    const idx = this.pushToken('heredoc', this.i, this.i, f.depth);
    const w = this.wordState(idx);
    const region = this.newRegion(this.i - 1);
    const fr = this.frame('heredoc', f.depth, region, w, null);
    fr.heredoc = doc;
    fr.atLineStart = true;
    this.stack.push(fr);
  }

  protected stepHeredoc(f: Frame): void {
    const src = this.src;
    const doc = f.heredoc!;
    const w = f.owner!;
    // Only a delimiter without a newline can equal a line; comparing one is then bounded by the line.
    if (f.atLineStart && doc.terminable) {
      f.atLineStart = false;
      let j = this.i;
      if (doc.stripTabs) while (src[j] === '\t') j++;
      const after = j + doc.delimiter.length;
      if (src.startsWith(doc.delimiter, j) && (after === this.n || src[after] === '\n')) {
        // Terminator line: ends the quoted body.
        const lineEnd = after < this.n ? after + 1 : after;
        for (let k = this.i; k < lineEnd; k++) {
          this.syntax[k] = SyntaxClass.QuoteBreak;
          this.tokenOf[k] = w.index;
        }
        this.quoteClose[f.region] = this.i;
        this.i = lineEnd;
        w.token.end = lineEnd;
        w.token.text = src.slice(w.token.start, lineEnd);
        this.stack.pop();
        this.startPendingHeredoc(this.top());
        return;
      }
    }
    const c = src[this.i]!;
    if (c === '\n') {
      this.content(this.i++, w, f.region);
      f.atLineStart = true;
      return;
    }
    if (doc.expand) {
      if (c === '\\') {
        this.escape(w, f.region, false, false);
        return;
      }
      if (c === '$') {
        this.dollar(f.depth, w, f.region, false);
        return;
      }
      if (c === '`') {
        this.backtick(f.depth, w);
        return;
      }
    }
    this.content(this.i++, w, f.region);
  }
}
