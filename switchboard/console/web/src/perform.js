// A change the person asked for, and what they are told: the success message, or why not (the API's Chinese
// message naming the field). One way for every panel's buttons.
import { ElMessage } from "element-plus";

/** Await `promise`; say `done` (when given) or the error; true when it worked. */
export async function perform(promise, done) {
  try {
    await promise;
    if (done) ElMessage.success(done);
    return true;
  } catch (err) {
    ElMessage.error(err.message);
    return false;
  }
}
