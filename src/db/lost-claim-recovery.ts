/**
 * A claim that fails may have leased work all the same: its answer, not its commit, may be what
 * the lost connection took. Left alone, that work would wait out its lease, and hold back what
 * queues behind it. So after a failed claim the claimer gives back what it holds but is not
 * running, and claims nothing until that succeeds: a claim meanwhile could race the give-back.
 * The job worker and the webhook dispatcher each keep one.
 */
export class LostClaimRecovery {
  private giveBackOwed = false;

  /** `giveBack` releases what the claimer holds but is not running; it is read when called. */
  constructor(private readonly giveBack: () => Promise<unknown>) {}

  /** Whether a give-back is owed: until it is made, the claimer should take no work in. */
  get owed(): boolean {
    return this.giveBackOwed;
  }

  /** Notes a give-back owed after another failure than a claim's that may have leased work all the same. */
  owe(): void {
    this.giveBackOwed = true;
  }

  /** Once a round: gives back what a failed claim may have leased, until that succeeds. */
  async settle(): Promise<void> {
    if (!this.giveBackOwed) return;
    try {
      await this.giveBack();
      this.giveBackOwed = false;
    } catch {
      // The database is still away; the next round tries again.
    }
  }

  /** Claims, unless a give-back is still owed (then nothing). A claim that fails makes one owed. */
  async claim<T>(claim: () => Promise<T[]>): Promise<T[]> {
    if (this.giveBackOwed) return [];
    try {
      return await claim();
    } catch (error) {
      this.giveBackOwed = true;
      throw error;
    }
  }
}
