// Asking before a command that cannot be taken back. Kept apart from the helpers every screen
// imports, so that only the screens that ask load the dialog.
import { showConfirmDialog } from 'vant'
import 'vant/es/dialog/style/index'

/** Whether the person confirmed; closing the dialog is a no. */
export function confirmed(title: string, message: string): Promise<boolean> {
  return showConfirmDialog({ title, message }).then(
    () => true,
    () => false,
  )
}
